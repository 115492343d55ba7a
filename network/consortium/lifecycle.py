"""Fabric's chaincode lifecycle for the network's chaincodes: install each organization's
package on its peers, approve the definition for each organization, commit it, start
the chaincode servers, and run ``init_network`` once.

Every step looks first (``queryinstalled``, ``querycommitted``, the ``initialized``
marker) so running it again changes nothing. Packages and deployments come from
:class:`consortium.chaincodes.ChaincodeCatalog`; the tools run through
:class:`consortium.admin.FabricAdmin`.

Under the namespace layout (``consortium.namespaces``) the two packages (contract and pair
storage) are installed on every peer, and every definition of the layout is approved by its
approvers (each with the package it runs there, or none) and committed: approvals of
different organizations and chaincodes in parallel, then the commits in parallel.

This module must not write node configurations nor join the channel.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any

from consortium import chaincodes, namespaces
from consortium.admin import FabricAdmin, parallel
from consortium.chaincodes import ChaincodeCatalog, Deployment
from consortium.config import Consortium, Org, PeerNode
from consortium.errors import FabricCommandError
from consortium.nodes import NodeSet

__all__ = ["ChaincodeLifecycle"]


class ChaincodeLifecycle:
    """Installs, defines and starts the chaincodes of one consortium."""

    def __init__(
        self,
        consortium: Consortium,
        catalog: ChaincodeCatalog,
        nodes: NodeSet,
        admin: FabricAdmin,
    ) -> None:
        self.consortium = consortium
        self.catalog = catalog
        self.nodes = nodes
        self.admin = admin
        self.layout = catalog.layout

    def deploy(
        self,
        name: str,
        module: str,
        *,
        policy: str | None = None,
        collections: list[dict[str, Any]] | None = None,
        version: str = "1.0",
        env: dict[str, str] | None = None,
        argv: list[str] | None = None,
    ) -> Deployment:
        """Deploy another chaincode as a service on the running network (idempotent).

        Every organization installs its own package, approves, and the definition
        is committed; one server per peer runs ``python -m fabshim serve module``.
        """
        d = self.catalog.declare(
            name, module, policy=policy, collections=collections, version=version,
            env=env, argv=argv,
        )  # fmt: skip
        self.install(d)
        self.nodes.ensure_chaincode_servers(d)
        self.define(d)
        return d

    def install(self, d: Deployment) -> None:
        """Install each organization's package of ``d`` on its peers that lack it."""
        peer_bin = self.admin.tool("peer")

        def install(p: PeerNode) -> None:
            org = self.consortium.org(p.org)
            env = self.admin.admin_env(org, p)
            installed = self.admin.run(
                [peer_bin, "lifecycle", "chaincode", "queryinstalled", "--output", "json"], env=env
            )
            if self.catalog.package_id(org, d) in installed:
                return
            self.admin.run(
                [
                    peer_bin, "lifecycle", "chaincode", "install",
                    str(self.catalog.package_path(org, d)),
                ],
                env=env,
            )  # fmt: skip

        parallel(install, self.consortium.peers)

    def definition_args(self, d: Deployment) -> list[str]:
        """The ``peer lifecycle chaincode`` flags of ``d``'s definition (sequence 1);
        writes its collections file."""
        args = [
            "--channelID", self.consortium.channel, "--name", d.name, "--version", d.version,
            "--sequence", "1", "--signature-policy", d.policy,
        ]  # fmt: skip
        if d.collections_json:
            collections = self.layout.collections_file(d.name)
            collections.write_text(d.collections_json)
            args += ["--collections-config", str(collections)]
        return args

    def committed(self, d: Deployment) -> bool:
        """Is ``d``'s definition (sequence 1) committed on the channel?"""
        org = self.consortium.application_orgs[0]
        proc = subprocess.run(
            [
                self.admin.tool("peer"), "lifecycle", "chaincode", "querycommitted",
                "--channelID", self.consortium.channel, "--name", d.name, "--output", "json",
            ],
            env={**os.environ, **self.admin.admin_env(org)},
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        return proc.returncode == 0 and '"sequence": 1' in proc.stdout

    def define(self, d: Deployment) -> None:
        """Approve ``d`` for every application organization, then commit it."""
        if self.committed(d):
            return
        peer_bin = self.admin.tool("peer")
        definition = self.definition_args(d)
        orgs = self.consortium.application_orgs

        def approve(org: Org) -> None:
            self.admin.run_retrying(
                [
                    peer_bin, "lifecycle", "chaincode", "approveformyorg",
                    *self.admin.orderer_args(), *definition,
                    "--package-id", self.catalog.package_id(org, d), "--waitForEvent",
                ],
                env=self.admin.admin_env(org),
            )  # fmt: skip

        parallel(approve, orgs)
        self.admin.run_retrying(
            [
                peer_bin, "lifecycle", "chaincode", "commit", *self.admin.orderer_args(),
                *definition, *self.admin.peer_targets(orgs), "--waitForEvent",
            ],
            env=self.admin.admin_env(orgs[0]),
        )  # fmt: skip

    # ------------------------------------------------------------------ namespace layout

    def committed_names(self) -> set[str]:
        """Names of every chaincode definition committed on the channel (one query)."""
        org = self.consortium.application_orgs[0]
        out = self.admin.run(
            [
                self.admin.tool("peer"), "lifecycle", "chaincode", "querycommitted",
                "--channelID", self.consortium.channel, "--output", "json",
            ],
            env=self.admin.admin_env(org),
        )  # fmt: skip
        data = json.loads(out or "{}")
        return {str(x.get("name")) for x in data.get("chaincode_definitions") or []}

    def namespace_args(self, d: namespaces.Definition) -> list[str]:
        """The ``peer lifecycle chaincode`` flags of a layout definition (sequence 1)."""
        args = [
            "--channelID", self.consortium.channel, "--name", d.name,
            "--version", self.consortium.chaincode.version,
            "--sequence", "1", "--signature-policy", d.policy,
        ]  # fmt: skip
        if d.collections:
            path = self.layout.collections_file(d.name)
            if not path.exists():  # written once, atomically: approvals run in parallel
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps(list(d.collections), indent=2))
                tmp.replace(path)
            args += ["--collections-config", str(path)]
        return args

    def define_namespaces(self, defs: list[namespaces.Definition] | None = None) -> int:
        """Approve and commit every definition of the layout not yet committed (``defs``:
        only those, e.g. what a joining bank adds); returns how many were committed."""
        defs = namespaces.definitions(self.consortium) if defs is None else defs
        done = self.committed_names()
        todo = [d for d in defs if d.name not in done]
        if not todo:
            return 0
        peer_bin = self.admin.tool("peer")
        packages = {namespaces.Package.CONTRACT: self.catalog.main(),
                    namespaces.Package.STORAGE: self.catalog.storage()}

        def approve(job: tuple[namespaces.Definition, str]) -> None:
            d, org_name = job
            org = self.consortium.org(org_name)
            package = d.package_of(org_name)
            flags = [] if package is None else [
                "--package-id", self.catalog.package_id(org, packages[package])]
            try:
                self.admin.run_retrying(
                    [
                        peer_bin, "lifecycle", "chaincode", "approveformyorg",
                        *self.admin.orderer_args(), *self.namespace_args(d), *flags,
                        "--waitForEvent",
                    ],
                    env=self.admin.admin_env(org),
                )  # fmt: skip
            except FabricCommandError as exc:
                # approved already (an earlier run, or a retry after a slow commit event):
                # Fabric refuses the same approval twice, which is what we wanted anyway
                if "with unchanged content" not in exc.output:
                    raise

        def commit(d: namespaces.Definition) -> None:
            approvers = [self.consortium.org(o) for o in d.approvers]
            self.admin.run_retrying(
                [
                    peer_bin, "lifecycle", "chaincode", "commit", *self.admin.orderer_args(),
                    *self.namespace_args(d), *self.admin.peer_targets(approvers),
                    "--waitForEvent",
                ],
                env=self.admin.admin_env(approvers[0]),
            )  # fmt: skip

        for d in todo:
            self.namespace_args(d)  # the collections files, before any approval reads them
        parallel(approve, [(d, o) for d in todo for o in d.approvers])
        parallel(commit, todo)
        return len(todo)

    def initialize(self) -> None:
        """Run the consortium chaincode's ``init_network`` with the registry, once (under
        the namespace layout, in each organization's own namespace, endorsed by its peer)."""
        marker = self.layout.initialized_marker
        d = self.catalog.main()
        if marker.exists() or d.init_function is None:
            return
        if self.catalog.namespaced:
            self._initialize_namespaces(d.init_function)
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
            return
        banks = self.consortium.banks
        # As the admin of the first bank (NodeOU admin: the chaincode requires it), with the
        # argument every server pinned (chaincodes.registry_pin).
        registry = chaincodes.registry_argument(self.consortium)
        try:
            self.admin.invoke(banks[0], d.name, [d.init_function, registry], banks)
        except FabricCommandError as exc:
            if "ALREADY_INITIALIZED" not in exc.output:
                raise
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))

    def _initialize_namespaces(self, function: str) -> None:
        registry = chaincodes.registry_argument(self.consortium)
        runners = [d for d in namespaces.definitions(self.consortium) if d.contract_runner]

        def init(d: namespaces.Definition) -> None:
            assert d.contract_runner is not None
            org = self.consortium.org(d.contract_runner)
            try:
                self.admin.invoke(org, d.name, [function, registry], [org])
            except FabricCommandError as exc:
                if "ALREADY_INITIALIZED" not in exc.output:
                    raise

        parallel(init, runners)
