"""SimulatorService: the one facade that the CLI, the API and the dashboard call.

Authorization and tenant scope are enforced here, once. Another tenant's resource answers
"not found", so that its existence is not disclosed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import ValidationError

# The queue, the API tokens and the checklist are imported by the methods that use them: the
# dashboard opens a service and reads its first snapshot before anything else, and its start
# waits on every module imported here (a few dozen milliseconds for those three).
if TYPE_CHECKING:
    from simcore import tokens
    from simcore.checklist import Checklist
    from simcore.sira_export import ExportResult

from simcore import approvals, journal, metrics, rollout, safe_text
from simcore.approvals import Approval
from simcore.auth import Permission, Principal, local_principal
from simcore.config import Settings
from simcore.dashboard import build_snapshot
from simcore.errors import InvalidInput, NotFound
from simcore.model import (
    MAX_PATCH_CODE,
    PATCH_SLUG_PATTERN,
    ApprovalStatus,
    Patch,
    PatchSource,
    Role,
    Run,
    RunStatus,
    SdkLanguage,
    Simulation,
    SimulationCreate,
    TenantType,
)
from simcore.snapshot import DashboardSnapshot
from simcore.store import (
    Database,
    migrate,
    patches as patch_store,
    runs as run_store,
    simulations as sim_store,
)

RUNNABLE_LANGUAGES = (SdkLanguage.NODE, SdkLanguage.PYTHON)


def _uuid(value: str | UUID, field: str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput(field, f"not a valid id: {value!r}") from None


_SLUG = re.compile(PATCH_SLUG_PATTERN)


def _check_new_patch(patch: Patch) -> None:
    """The registry's rules for a new patch, checked before the database sees it: each
    broken one is named by its field (the CLI and the dashboard have no schema in front)."""
    texts = {
        "error_signature": patch.error_signature,
        "patch_code": patch.patch_code,
        "rollback_code": patch.rollback_code,
        "description": patch.description,
        "version": patch.version,
        "slug": patch.slug or "",
    }
    for name, text in texts.items():
        if "\x00" in text:
            raise InvalidInput(f"patch.{name}", "must not contain NUL characters")
        safe_text.check(f"patch.{name}", text)
    if not patch.error_signature.strip() or len(patch.error_signature) > 200:
        raise InvalidInput("patch.error_signature", "must be 1 to 200 characters of visible text")
    if patch.slug is not None and not _SLUG.fullmatch(patch.slug):
        raise InvalidInput(
            "patch.slug", "1 to 80 of a-z 0-9 . _ - (starting with a letter or a digit)"
        )
    if not patch.version.strip() or len(patch.version) > 50:
        raise InvalidInput("patch.version", "must be 1 to 50 characters of visible text")
    if len(patch.description) > 2000:
        raise InvalidInput("patch.description", "must be at most 2000 characters")
    if len(patch.patch_code) > MAX_PATCH_CODE or not patch.patch_code.strip():
        raise InvalidInput("patch.patch_code", f"must be 1 to {MAX_PATCH_CODE} characters")
    if len(patch.rollback_code) > MAX_PATCH_CODE:
        raise InvalidInput("patch.rollback_code", f"must be at most {MAX_PATCH_CODE} characters")
    from simcore import patch_check

    patch_check.require_compiles(
        patch.sdk_language.value,
        (("patch.patch_code", patch.patch_code), ("patch.rollback_code", patch.rollback_code)),
    )


@dataclass(frozen=True)
class RunDetail:
    run: Run
    simulation: Simulation
    journal: list[journal.Entry]


@dataclass(frozen=True)
class LaunchResult:
    run: Run
    created: bool


_ENTRY_FIELDS = tuple(journal.Entry.__dataclass_fields__)
_ENTRY_ID = _ENTRY_FIELDS.index("id")


GET_RUN_SQL = (
    "SELECT "
    + ", ".join(f"r.{c}" for c in run_store.FIELDS)
    + ", "
    + ", ".join(f"s.{c}" for c in sim_store.FIELDS)
    + ", "
    + ", ".join(f"j.{c}" for c in _ENTRY_FIELDS)
    + " FROM sdk_simulation_runs r JOIN sdk_simulations s ON s.id = r.simulation_id"
    " LEFT JOIN LATERAL (SELECT * FROM sdk_simulation_journal WHERE run_id = r.id"
    " ORDER BY id LIMIT 1000) j ON true WHERE r.id = %s ORDER BY j.id"
)
"""The run, its simulation and its journal (as journal.entries: by id, at most 1000) in one
statement: one round trip, one snapshot. n journal entries give n rows (one with NULLs for
none), split by position since the three share column names; the journal columns are those an
Entry is made of. ``run_detail_from_rows`` reads its rows (as tuples)."""


def run_detail_from_rows(
    principal: Principal, run_id: UUID, rows: Sequence[Sequence[Any]]
) -> RunDetail:
    """``get_run``'s answer from the rows of ``GET_RUN_SQL``: NotFound outside the scope."""
    first = rows[0] if rows else None
    if first is None:
        raise NotFound(f"run {run_id} not found")
    nrun, nsim = len(run_store.FIELDS), len(sim_store.FIELDS)
    run_row = dict(zip(run_store.FIELDS, first[:nrun], strict=True))
    if not principal.sees(run_row["tenant_type"], run_row["tenant_id"]):
        raise NotFound(f"run {run_id} not found")
    sim_row = dict(zip(sim_store.FIELDS, first[nrun : nrun + nsim], strict=True))
    sim = sim_store.to_simulation(sim_row)
    entries = [
        journal.Entry.from_row(dict(zip(_ENTRY_FIELDS, row[nrun + nsim :], strict=True)))
        for row in rows
        if row[nrun + nsim + _ENTRY_ID] is not None  # NULL: the run has no entry
    ]
    return RunDetail(Run.model_validate(run_row), sim, entries)


class SimulatorService:
    """Local mode: the store, the queue and the journal, on this machine's database."""

    def __init__(
        self, settings: Settings, *, db: Database | None = None, migrate_on_start: bool = True
    ) -> None:
        self.settings = settings
        self.db = db or Database(settings)
        self._owns_db = db is None
        self._started = not migrate_on_start

    def start(self) -> SimulatorService:
        """Migrate and load the built-in patches (idempotent, safe from several processes).

        Both are nearly always done already: one read on a pooled connection says so, and
        then neither the migration lock (on a connection of its own) nor the patch upserts (a
        write transaction of a statement per patch) are paid by every dashboard that opens.
        """
        if not self._started:
            schema_current, patches_current = self._startup_state()
            if not schema_current:
                migrate.migrate(self.db)
            if not patches_current:
                self.sync_builtin_patches()
            self._started = True
        return self

    _STARTUP_STATE = """
    SELECT (SELECT coalesce(jsonb_object_agg(version::text, checksum), '{}')
              FROM simcore_schema_migrations) AS migrations,
           (SELECT coalesce(jsonb_object_agg(id::text, jsonb_build_array(version, patch_code)),
                            '{}')
              FROM sdk_self_healing_registry WHERE id = ANY(%s)) AS patches
    """

    def _startup_state(self) -> tuple[bool, bool]:
        """Whether the schema is exactly this version's, and the built-in patches are stored.

        Anything else (a migration missing, unknown or changed) goes through ``migrate``,
        which applies or refuses under its lock; missing or older patches are upserted.
        """
        import psycopg

        try:
            from simcore.patches import builtin_patches
        except ImportError:  # the patch library is optional for the store alone
            builtins = []
        else:
            builtins = list(builtin_patches())
        known = {str(m.version): m.checksum for m in migrate.available()}
        try:
            with self.db.transaction() as conn:
                row = conn.execute(self._STARTUP_STATE, ([p.id for p in builtins],)).fetchone()
        except psycopg.errors.UndefinedTable:  # a new database: nothing applied yet
            return False, False
        assert row is not None
        stored: dict[str, list[str]] = row["patches"]
        patches_current = all(stored.get(str(p.id)) == [p.version, p.patch_code] for p in builtins)
        return row["migrations"] == known, patches_current

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> SimulatorService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sync_builtin_patches(self) -> int:
        try:
            from simcore.patches import builtin_patches
        except ImportError:  # the patch library is optional for the store alone
            return 0
        with self.db.transaction() as conn:
            return patch_store.sync_builtins(conn, builtin_patches())

    # -- simulations ------------------------------------------------------------------------

    def create_simulation(
        self, principal: Principal, data: SimulationCreate | dict[str, Any]
    ) -> Simulation:
        principal.require(Permission.CREATE, "create simulations")
        if isinstance(data, dict):
            try:
                data = SimulationCreate.model_validate(data)
            except ValidationError as exc:
                raise InvalidInput.from_validation("simulation", exc) from None
        if data.sdk_language not in RUNNABLE_LANGUAGES:
            raise InvalidInput(
                "sdk_language",
                f"no SDK runner for {data.sdk_language.value!r} "
                f"yet (available: {', '.join(RUNNABLE_LANGUAGES)})",
            )
        if principal.scoped and not principal.sees(data.tenant_type.value, data.tenant_id):
            raise InvalidInput("tenant", "outside the caller's tenant scope")
        with self.db.transaction() as conn:
            if data.patch_reference is not None:
                try:
                    patch = patch_store.get(conn, data.patch_reference)
                except NotFound:
                    raise InvalidInput(
                        "patch_reference", f"no patch {data.patch_reference} in the registry"
                    ) from None
                if patch.sdk_language != data.sdk_language:
                    raise InvalidInput(
                        "patch_reference",
                        f"patch is for {patch.sdk_language.value}, the "
                        f"simulation for {data.sdk_language.value}",
                    )
                if not patch.active:
                    raise InvalidInput("patch_reference", "patch is not active")
            return sim_store.insert(
                conn,
                tenant_type=data.tenant_type.value,
                tenant_id=data.tenant_id,
                name=data.name,
                description=data.description,
                sdk_language=data.sdk_language.value,
                scenario=data.scenario,
                patch_reference=data.patch_reference,
                created_by=principal.actor,
            )

    def _simulation_row(
        self, conn: Any, principal: Principal, simulation_id: UUID
    ) -> dict[str, Any]:
        row = sim_store.get(conn, simulation_id)
        if row is None or not principal.sees(row["tenant_type"], row["tenant_id"]):
            raise NotFound(f"simulation {simulation_id} not found")
        return row

    def get_simulation(self, principal: Principal, simulation_id: str | UUID) -> Simulation:
        principal.require(Permission.READ, "read simulations")
        sid = _uuid(simulation_id, "simulation_id")
        with self.db.transaction() as conn:
            return sim_store.to_simulation(self._simulation_row(conn, principal, sid))

    def list_simulations(self, principal: Principal, limit: int = 100) -> list[Simulation]:
        principal.require(Permission.READ, "read simulations")
        with self.db.transaction() as conn:
            rows = sim_store.list_scoped(
                conn,
                principal.tenant_type.value if principal.tenant_type else None,
                principal.tenant_id,
                limit,
            )
        return [sim_store.to_simulation(r) for r in rows]

    # -- runs -------------------------------------------------------------------------------

    def launch_run(
        self,
        principal: Principal,
        simulation_id: str | UUID,
        seed: int | None,
        idempotency_key: str | None = None,
    ) -> LaunchResult:
        from simcore import queue

        principal.require(Permission.RUN, "launch runs")
        sid = _uuid(simulation_id, "simulation_id")
        with self.db.transaction() as conn:
            self._simulation_row(conn, principal, sid)
        launch = queue.launch_run(self.db, sid, seed, idempotency_key, principal.actor)
        return LaunchResult(Run.model_validate(launch.run), launch.created)

    def rerun(self, principal: Principal, run_id: str | UUID) -> LaunchResult:
        """The same simulation with the same seed, as a new run."""
        run = self.get_run(principal, run_id).run
        return self.launch_run(principal, run.simulation_id, run.seed, None)

    def _run_row(self, conn: Any, principal: Principal, run_id: UUID) -> dict[str, Any]:
        row: dict[str, Any] | None = conn.execute(
            f"SELECT {run_store.COLUMNS} FROM sdk_simulation_runs WHERE id = %s", (run_id,)
        ).fetchone()
        if row is None or not principal.sees(row["tenant_type"], row["tenant_id"]):
            raise NotFound(f"run {run_id} not found")
        return row

    def get_run(self, principal: Principal, run_id: str | UUID) -> RunDetail:
        from psycopg.rows import tuple_row

        principal.require(Permission.READ, "read runs")
        rid = _uuid(run_id, "run_id")
        with self.db.transaction() as conn:
            # One statement needs no BEGIN/COMMIT (two more round trips); the pooled
            # connection is made transactional again before it goes back to the pool.
            conn.autocommit = True
            try:
                cur = conn.cursor(row_factory=tuple_row)
                rows = cur.execute(GET_RUN_SQL, (rid,)).fetchall()
            finally:
                try:
                    conn.autocommit = False
                except Exception:
                    conn.close()  # broken: the pool replaces it
        return run_detail_from_rows(principal, rid, rows)

    def list_runs(
        self,
        principal: Principal,
        *,
        status: RunStatus | None = None,
        simulation_id: str | UUID | None = None,
        limit: int = 50,
    ) -> list[Run]:
        principal.require(Permission.READ, "read runs")
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit", "must be from 1 to 10000")
        sid = _uuid(simulation_id, "simulation_id") if simulation_id is not None else None
        with self.db.transaction() as conn:
            rows = conn.execute(
                f"SELECT {run_store.COLUMNS} FROM sdk_simulation_runs "
                "WHERE (%(st)s::text IS NULL OR status = %(st)s) "
                "AND (%(sid)s::uuid IS NULL OR simulation_id = %(sid)s) "
                "AND (%(tt)s::text IS NULL OR tenant_type = %(tt)s) "
                "AND (%(ti)s::text IS NULL OR tenant_id = %(ti)s) "
                "ORDER BY run_at DESC LIMIT %(limit)s",
                {
                    "st": status.value if status else None,
                    "sid": sid,
                    "tt": principal.tenant_type.value if principal.tenant_type else None,
                    "ti": principal.tenant_id,
                    "limit": limit,
                },
            ).fetchall()
        return [Run.model_validate(r) for r in rows]

    def cancel_run(self, principal: Principal, run_id: str | UUID) -> Run:
        from simcore import queue

        principal.require(Permission.CANCEL, "cancel runs")
        rid = _uuid(run_id, "run_id")
        with self.db.transaction() as conn:
            self._run_row(conn, principal, rid)
        return Run.model_validate(queue.cancel_run(self.db, rid, principal.actor))

    def read_log(
        self, principal: Principal, run_id: str | UUID, after_seq: int = -1, limit: int = 5000
    ) -> list[tuple[int, str]]:
        from simcore import queue

        principal.require(Permission.READ, "read run logs")
        rid = _uuid(run_id, "run_id")
        with self.db.transaction() as conn:
            self._run_row(conn, principal, rid)
            return queue.read_log(conn, rid, after_seq, limit)

    # -- patches ----------------------------------------------------------------------------

    def list_patches(
        self, principal: Principal, *, language: str | None = None, include_inactive: bool = False
    ) -> list[Patch]:
        principal.require(Permission.READ, "read the patch registry")
        with self.db.transaction() as conn:
            return patch_store.list_all(conn, language=language, include_inactive=include_inactive)

    def get_patch(self, principal: Principal, ref: str | UUID) -> Patch:
        principal.require(Permission.READ, "read the patch registry")
        with self.db.transaction() as conn:
            return patch_store.get(conn, ref)

    def add_patch(self, principal: Principal, data: dict[str, Any]) -> Patch:
        principal.require(Permission.MANAGE_PATCHES, "add patches")
        import uuid

        payload = {"id": uuid.uuid4(), "source": PatchSource.OPS.value, **data}
        if payload.get("source") == PatchSource.BUILTIN.value:
            raise InvalidInput("patch.source", "builtin is reserved for shipped patches")
        try:
            patch = Patch.model_validate(payload)
        except ValidationError as exc:
            raise InvalidInput.from_validation("patch", exc) from None
        _check_new_patch(patch)
        with self.db.transaction() as conn:
            if patch.slug:
                clash = conn.execute(
                    "SELECT 1 FROM sdk_self_healing_registry WHERE slug = %s", (patch.slug,)
                ).fetchone()
                if clash:
                    raise InvalidInput("patch.slug", f"{patch.slug!r} is already taken")
            return patch_store.insert(conn, patch, principal.actor)

    # -- approvals --------------------------------------------------------------------------

    def list_approvals(
        self, principal: Principal, *, status: ApprovalStatus | None = None, limit: int = 100
    ) -> list[Approval]:
        principal.require(Permission.READ, "read approvals")
        with self.db.transaction() as conn:
            return approvals.list_scoped(
                conn,
                status=status,
                tenant_type=principal.tenant_type.value if principal.tenant_type else None,
                tenant_id=principal.tenant_id,
                limit=limit,
            )

    def approve_patch(
        self, principal: Principal, run_id: str | UUID, notes: str | None
    ) -> Approval:
        principal.require(Permission.APPROVE, "approve patches")
        rid = _uuid(run_id, "run_id")
        with self.db.transaction() as conn:
            self._run_row(conn, principal, rid)
            return approvals.decide(
                conn,
                rid,
                principal.actor,
                ApprovalStatus.APPROVED,
                notes,
                require_distinct=self.settings.require_distinct_approver,
            )

    def reject_patch(self, principal: Principal, run_id: str | UUID, notes: str | None) -> Approval:
        principal.require(Permission.APPROVE, "reject patches")
        rid = _uuid(run_id, "run_id")
        if not notes or not notes.strip():
            raise InvalidInput("approval_notes", "a rejection needs a note saying why")
        with self.db.transaction() as conn:
            self._run_row(conn, principal, rid)
            return approvals.decide(
                conn,
                rid,
                principal.actor,
                ApprovalStatus.REJECTED,
                notes,
                require_distinct=self.settings.require_distinct_approver,
            )

    # -- rollout (after approval) ----------------------------------------------------------
    # Every transition needs the ops role; reading the state and the canary needs READ. The
    # clock is a parameter (``now``) so that tests run the canary's hour on virtual time.

    def _rollout_transition(
        self,
        principal: Principal,
        run_id: str | UUID,
        action: rollout.RolloutAction,
        reason: str | None,
        now: datetime | None,
    ) -> rollout.TransitionResult:
        rollout.require_ops(principal, f"{action.value} patches")
        rid = _uuid(run_id, "run_id")
        with self.db.transaction() as conn:
            self._run_row(conn, principal, rid)
        return rollout.transition(
            self.db,
            principal.actor,
            rid,
            action,
            reason,
            settings=self.settings,
            now=now or rollout.utcnow(),
        )

    def stage_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> rollout.TransitionResult:
        """approved -> staged at the plan's first step (the runbook's 5 %)."""
        action = rollout.RolloutAction.STAGE
        return self._rollout_transition(principal, run_id, action, reason, now)

    def promote_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> rollout.TransitionResult:
        """staged -> the next step of the plan; the step 100 % is deployed."""
        action = rollout.RolloutAction.PROMOTE
        return self._rollout_transition(principal, run_id, action, reason, now)

    def rollback_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> rollout.TransitionResult:
        """staged or deployed -> rolled_back (0 %)."""
        action = rollout.RolloutAction.ROLLBACK
        return self._rollout_transition(principal, run_id, action, reason, now)

    def record_canary_observation(
        self,
        principal: Principal,
        run_id: str | UUID,
        success_rate: float,
        *,
        requests: int | None = None,
        source: str = "api",
        observed_at: datetime | None = None,
        now: datetime | None = None,
    ) -> tuple[rollout.Observation, rollout.Evaluation]:
        """One measurement of the canary in production, and the rule's decision after it."""
        rollout.require_ops(principal, "record canary observations")
        rollout.check_source(source)
        rid = _uuid(run_id, "run_id")
        with self.db.transaction() as conn:
            self._run_row(conn, principal, rid)
        return rollout.record_observation(
            self.db,
            rid,
            principal.actor,
            success_rate,
            requests=requests,
            source=source,
            now=now or rollout.utcnow(),
            observed_at=observed_at,
        )

    def evaluate_canary(
        self,
        principal: Principal,
        run_id: str | UUID,
        *,
        scrape: bool = False,
        apply: bool = False,
        now: datetime | None = None,
    ) -> rollout.CanaryReport:
        """The rollout's state, its latest observations and the rule's decision.

        ``scrape`` first reads one observation from ``canary_metrics_url``; ``apply`` carries
        the decision out (promote to the next step, or roll back). Both need ops.
        """
        principal.require(Permission.READ, "read rollouts")
        if scrape:
            rollout.require_ops(principal, "record canary observations")
        if apply:
            rollout.require_ops(principal, "promote or roll back patches")
        rid = _uuid(run_id, "run_id")
        with self.db.transaction() as conn:
            self._run_row(conn, principal, rid)
        return rollout.evaluate_canary(
            self.db,
            rid,
            principal.actor,
            settings=self.settings,
            now=now or rollout.utcnow(),
            scrape=scrape,
            apply=apply,
        )

    def checklist(self, principal: Principal, *, now: datetime | None = None) -> Checklist:
        """The runbook's daily checklist, evaluated from the data, in the caller's scope."""
        principal.require(Permission.READ, "run the daily checklist")
        principal.require(
            Permission.READ_ANONYMIZED, "run the daily checklist (it counts anonymized errors)"
        )
        from simcore.checklist import run as run_checklist

        with self.db.transaction() as conn:
            return run_checklist(conn, principal, now=now or rollout.utcnow())

    # -- artifacts and SIRA -----------------------------------------------------------------

    def get_artifact(self, principal: Principal, run_id: str | UUID, kind: str = "log") -> bytes:
        """The archived ``<run_id>.log`` (kind ``log``) or ``<run_id>.report.json``."""
        from simcore.artifacts import open_store, run_keys

        principal.require(Permission.READ, "read run artifacts")
        if kind not in ("log", "report"):
            raise InvalidInput("kind", "must be log or report")
        rid = _uuid(run_id, "run_id")
        with self.db.transaction() as conn:
            row = self._run_row(conn, principal, rid)
        if row["artifact_s3_key"] is None:
            why = row.get("artifact_error") or (
                "the run has not finished"
                if not RunStatus(row["status"]).terminal
                else "nothing was archived for this run"
            )
            raise NotFound(
                f"run {rid} has no archived artifacts: {why} "
                f"(the log is in the database: simcore runs logs {rid})"
            )
        log_key, report_key = run_keys(str(rid))
        return open_store(self.settings).get_bytes(log_key if kind == "log" else report_key)

    def export_sira(self, principal: Principal, destination: str | None = None) -> ExportResult:
        """Send the anonymized errors not yet exported as one batch; journaled.

        ``destination`` is a folder or ``s3://bucket/prefix``; default: ``sira/`` in the
        artifact store.
        """
        from simcore.artifacts import open_location
        from simcore.sira_export import export_pending

        principal.require(Permission.EXPORT_SIRA, "export to SIRA")
        if destination is None:
            base = self.settings.artifacts_location.rstrip("/")
            destination = f"{base}/sira"
        return export_pending(self.db, open_location(destination), principal.actor)

    # -- journal ----------------------------------------------------------------------------

    def verify_journal(self, principal: Principal) -> journal.Verification:
        principal.require(Permission.READ, "read the journal")
        return journal.verify(self.db)

    # -- API tokens -------------------------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """The principal an API bearer token stands for (tokens.Unauthenticated if none)."""
        from simcore import tokens

        return tokens.authenticate(self.db, token)

    def create_token(
        self,
        principal: Principal,
        role: Role | str,
        *,
        tenant_type: TenantType | str | None = None,
        tenant_id: str | None = None,
        name: str | None = None,
        identity: str | None = None,
    ) -> tokens.CreatedToken:
        from simcore import tokens

        principal.require(Permission.ADMIN, "manage API tokens")
        with self.db.transaction() as conn:
            return tokens.create(
                conn,
                role,
                tenant_type=tenant_type,
                tenant_id=tenant_id,
                name=name,
                identity=identity,
                created_by=principal.actor,
            )

    def list_tokens(self, principal: Principal) -> list[tokens.TokenInfo]:
        from simcore import tokens

        principal.require(Permission.ADMIN, "manage API tokens")
        with self.db.transaction() as conn:
            return tokens.list_all(conn)

    def revoke_token(self, principal: Principal, ref: str | UUID) -> tuple[tokens.TokenInfo, bool]:
        """Revoke by id (or unique prefix); the bool says whether it was still active."""
        from simcore import tokens

        principal.require(Permission.ADMIN, "manage API tokens")
        with self.db.transaction() as conn:
            return tokens.revoke(conn, ref)

    # -- metrics ----------------------------------------------------------------------------

    def dashboard_metrics(self) -> metrics.MetricsSnapshot:
        """Installation-wide counts for Prometheus and the dashboard's tiles.

        No principal: these are aggregates that name no tenant and no resource, read by a
        scraper that holds no token (the runbook's `curl .../api/simulator/metrics`).
        """
        with self.db.transaction() as conn:
            return metrics.read_snapshot(conn)

    # -- dashboard --------------------------------------------------------------------------

    def dashboard(self, principal: Principal) -> DashboardSnapshot:
        """Queue, rates, recent runs, pending approvals, KPIs and alerts, in the caller's scope."""
        principal.require(Permission.READ, "read the dashboard")
        with self.db.transaction() as conn:
            return build_snapshot(conn, principal)


def open_local(
    settings: Settings, principal: Principal | None = None
) -> tuple[SimulatorService, Principal]:
    return SimulatorService(settings).start(), principal or local_principal()
