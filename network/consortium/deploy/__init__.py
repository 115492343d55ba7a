"""Container deployments of the consortium: a Docker Compose file and Kubernetes manifests.

Our machines run the network natively (:mod:`consortium.network`). For users who have a
container engine, this package derives the same network from the same consortium file,
on Fabric's official images at the pinned version (``hyperledger/fabric-orderer``,
``fabric-peer``, ``fabric-tools``) and one image of ours for the Python chaincode servers.

* :mod:`.model`: images, container paths, the targets and the nodes' host names;
* :mod:`.folder`: the deployment folder (crypto, secrets, packages, profiles, image);
* :mod:`.workloads`: each node as a container (image, environment, ports, files);
* :mod:`.bootstrap`: the bootstrap script (its functions are ``bootstrap.sh``, package data);
* :mod:`.compose` and :mod:`.kubernetes`: each target's documents, and writing them.

Owns: the container targets' documents and the deployment folder they need. Must not: start a
container, talk to a cluster, or re-implement a native step (it reuses the native crypto,
packages and profiles). ``consortium.containers`` re-exports its public names for the callers
that import them from there.
"""
