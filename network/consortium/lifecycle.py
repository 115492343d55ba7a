"""Fabric's chaincode lifecycle for the network's chaincodes: install each organization's
package on its peers, approve the definition for each organization, commit it, start
the chaincode servers, and run ``init_network`` once.

Every step looks first (installed packages, ``querycommitted``, the ``initialized``
marker) so running it again changes nothing. Packages and deployments come from
:class:`consortium.chaincodes.ChaincodeCatalog`; the tools run through
:class:`consortium.admin.FabricAdmin`.

Under the namespace layout (``consortium.namespaces``) the two packages (contract and pair
storage) are installed on every peer, and every definition of the layout is approved by its
approvers (each with the package it runs there, or none) and committed.

Approvals and commits are ``_lifecycle`` transactions sent by our own client
(:mod:`consortium.lifecycle_client`): every approval of every definition at once, bounded
in flight, sharing blocks; then every commit. Installs are admin proposals of our own client
too, every peer at once (:mod:`consortium.peer_admin`); the ``querycommitted`` queries stay
on Fabric's ``peer`` CLI (one or two calls per ``up``).

This module must not write node configurations nor join the channel.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from consortium import chaincodes, namespaces
from consortium.admin import FabricAdmin, run_async
from consortium.chaincodes import ChaincodeCatalog, Deployment
from consortium.config import Consortium
from consortium.lifecycle_args import ChaincodeDefinition
from consortium.lifecycle_client import (
    DEFAULT_CONCURRENCY,
    Approval,
    CommitJob,
    Invocation,
    LifecycleClient,
    LifecycleReport,
)
from consortium.nodes import NodeSet
from consortium.peer_admin import PackageInstall, PeerAdminClient

__all__ = ["ChaincodeLifecycle"]

#: The contract's refusal of a second ``init_network`` (deposit_token's error code).
_ALREADY_INITIALIZED = "ALREADY_INITIALIZED"


class ChaincodeLifecycle:
    """Installs, defines and starts the chaincodes of one consortium."""

    def __init__(
        self,
        consortium: Consortium,
        catalog: ChaincodeCatalog,
        nodes: NodeSet,
        admin: FabricAdmin,
        *,
        progress: Callable[[str], None] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        """``progress`` hears one line per batch of approvals or commits (counts, seconds);
        ``concurrency`` bounds the ``_lifecycle`` transactions in flight."""
        self.consortium = consortium
        self.catalog = catalog
        self.nodes = nodes
        self.admin = admin
        self.layout = catalog.layout
        self.say = progress or (lambda _line: None)
        self.concurrency = concurrency

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
        """Install each organization's package of ``d`` on its peers that lack it (every
        peer at once, by our own admin client: :mod:`consortium.peer_admin`)."""
        jobs = []
        for p in self.consortium.peers:
            org = self.consortium.org(p.org)
            jobs.append(PackageInstall(p, self.catalog.package_path(org, d),
                                       self.catalog.package_id(org, d)))

        async def run() -> int:
            async with PeerAdminClient(self.consortium, self.layout) as client:
                return await client.install_all(jobs)

        run_async(run)

    def definition_of(self, d: Deployment) -> ChaincodeDefinition:
        """``d``'s chaincode definition (sequence 1)."""
        collections = json.loads(d.collections_json) if d.collections_json else []
        return ChaincodeDefinition(name=d.name, version=d.version, sequence=1, policy=d.policy,
                                   collections=tuple(collections))

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
        """Approve ``d`` for every application organization (each with its own package),
        then commit it, endorsed by every one of them."""
        if self.committed(d):
            return
        orgs = self.consortium.application_orgs
        definition = self.definition_of(d)
        approvals = [Approval(definition, org, self.catalog.package_id(org, d)) for org in orgs]
        self._approve_and_commit(approvals, [CommitJob(definition, tuple(orgs))])

    def _approve_and_commit(self, approvals: list[Approval], commits: list[CommitJob]) -> None:
        async def run() -> tuple[LifecycleReport, LifecycleReport]:
            async with LifecycleClient(self.consortium, self.layout,
                                       concurrency=self.concurrency) as client:
                approved = await client.approve_all(approvals)
                committed = await client.commit_all(commits)
                return approved, committed

        approved, committed = run_async(run)
        self.say(_describe("approvals", approved, self.concurrency))
        self.say(_describe("commits", committed, self.concurrency))

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

    def namespace_definition(self, d: namespaces.Definition) -> ChaincodeDefinition:
        """A layout definition as the channel agrees on it (sequence 1)."""
        return ChaincodeDefinition(name=d.name, version=self.consortium.chaincode.version,
                                   sequence=1, policy=d.policy, collections=d.collections)

    def define_namespaces(self, defs: list[namespaces.Definition] | None = None) -> int:
        """Approve and commit every definition of the layout not yet committed (``defs``:
        only those, e.g. what a joining bank adds); returns how many were committed."""
        defs = namespaces.definitions(self.consortium) if defs is None else defs
        done = self.committed_names()
        todo = [d for d in defs if d.name not in done]
        if not todo:
            return 0
        packages = {namespaces.Package.CONTRACT: self.catalog.main(),
                    namespaces.Package.STORAGE: self.catalog.storage()}
        approvals: list[Approval] = []
        commits: list[CommitJob] = []
        for d in todo:
            definition = self.namespace_definition(d)
            for org_name in d.approvers:
                org = self.consortium.org(org_name)
                package = d.package_of(org_name)
                package_id = None if package is None else self.catalog.package_id(
                    org, packages[package])
                approvals.append(Approval(definition, org, package_id))
            commits.append(CommitJob(definition,
                                     tuple(self.consortium.org(o) for o in d.approvers)))
        self._approve_and_commit(approvals, commits)
        return len(todo)

    def initialize(self) -> None:
        """Run the consortium chaincode's ``init_network`` with the registry, once (under
        the namespace layout, in each organization's own namespace, endorsed by its peer).

        As the organization's admin (NodeOU admin: the chaincode requires it), with the
        argument every server pinned (``chaincodes.registry_pin``); sent by our own client,
        all at once; ``ALREADY_INITIALIZED`` counts as done."""
        marker = self.layout.initialized_marker
        d = self.catalog.main()
        if marker.exists() or d.init_function is None:
            return
        arguments = (d.init_function, chaincodes.registry_argument(self.consortium))
        if self.catalog.namespaced:
            runners = [n for n in namespaces.definitions(self.consortium) if n.contract_runner]
            jobs = [Invocation(n.name, org, arguments, (org,), _ALREADY_INITIALIZED)
                    for n in runners
                    for org in [self.consortium.org(n.contract_runner or "")]]
        else:
            banks = self.consortium.banks
            jobs = [Invocation(d.name, banks[0], arguments, tuple(banks), _ALREADY_INITIALIZED)]

        async def run() -> LifecycleReport:
            async with LifecycleClient(self.consortium, self.layout,
                                       concurrency=self.concurrency) as client:
                return await client.invoke_all(jobs)

        self.say(_describe(f"{d.init_function} invocations", run_async(run), self.concurrency))
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))


def _describe(what: str, report: LifecycleReport, concurrency: int) -> str:
    rate = report.sent / report.seconds if report.seconds > 0 else 0.0
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(report.retried_for.items()))
    return (f"    {what}: {report.sent} sent ({report.present} already there, "
            f"{report.retries} retried{': ' + why if why else ''}"
            f"{f'; waited {report.waited:.1f} s for the peers' if report.waited >= 0.05 else ''})"
            f" in {len(report.blocks)} blocks, {report.seconds:.1f} s ({rate:.0f}/s, at most "
            f"{concurrency} in flight; last endorsed at {report.last_endorsed:.1f} s, last "
            f"submitted at {report.last_submitted:.1f} s)")
