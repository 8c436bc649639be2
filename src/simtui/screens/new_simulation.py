"""New simulation (``n``): a form from a template, checked field by field as you type.

The checks are the engine's own: the form builds the same ``SimulationCreate`` the API and
the CLI build, and shows each pydantic error under its field; the seed gets the queue's
bounds. What only the service can tell (the patch does not fit the language, the tenant is
out of scope) comes back from ``create_simulation`` as ``InvalidInput`` naming its field,
and lands under that field too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg
from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static

from simcore.errors import InvalidInput, SimError
from simcore.model import Patch, SimulationCreate, TenantType
from simcore.patches import default_patch
from simcore.queue import MAX_SEED
from simcore.service import RUNNABLE_LANGUAGES
from simcore.templates import TEMPLATES, Template
from simtui import format as fmt, keys
from simtui.demo import SEED
from simtui.keys import write_binding
from simtui.messages import ActionDone, ActionFailed, PatchesLoaded
from simtui.screens.base import BaseScreen
from simtui.widgets.footer import KeysFooter

NO_PATCH = "none"
SCENARIO_FIELDS = ("error_frequency", "latency_ms", "total_requests", "success_threshold")
FIELD_IDS = (
    "template",
    "name",
    "sdk_language",
    "tenant_type",
    "tenant_id",
    "patch_reference",
    *SCENARIO_FIELDS,
    "seed",
)


def field_of(engine_field: str) -> str | None:
    """The form field an engine error names (``simulation.scenario.latency_ms`` -> latency_ms)."""
    name = engine_field.removeprefix("simulation.").removeprefix("scenario.")
    name = {"tenant": "tenant_id", "patch": "patch_reference", "language": "sdk_language"}.get(
        name, name
    )
    name = name.split(".")[0]
    return name if name in FIELD_IDS else None


def _message(error: Any) -> str:
    # Worded as InvalidInput.from_validation words them, so CLI, API and form agree.
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    return str(error["msg"])


class FieldRow(Vertical):
    def __init__(self, field: str, label: str, control: Widget) -> None:
        super().__init__(id=f"field-{field}", classes="field")
        self.field = field
        self.label = label
        self.control = control

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label(self.label, classes="field-label")
            yield self.control
        yield Static("", id=f"error-{self.field}", classes="field-error", markup=False)

    def set_error(self, message: str | None) -> None:
        error = self.query_one(f"#error-{self.field}", Static)
        error.update(message or "")
        error.display = bool(message)
        self.set_class(bool(message), "-invalid")


class NewSimulationScreen(BaseScreen):
    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back", id="form.back"),
        *write_binding("ctrl+s", "launch", "Launch", id="form.launch"),
    ]

    def __init__(self, template: str = "signature_mismatch") -> None:
        super().__init__()
        self.template = TEMPLATES[template]
        self.language = "python"
        self._name_auto = True
        self._filling = False
        self.patches: list[Patch] = []
        self.errors: dict[str, str] = {}
        self._submitting = False

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        t = self.template
        yield Static("New simulation · checked as you type · ctrl+s launches", id="run-header")
        with VerticalScroll(id="form"):
            yield FieldRow(
                "template",
                "template",
                Select(
                    [(f"{x.title} ({x.name})", x.name) for x in TEMPLATES.values()],
                    value=t.name,
                    allow_blank=False,
                    compact=True,
                    id="template",
                ),
            )
            yield FieldRow("name", "name", Input(self._auto_name(), compact=True, id="name"))
            yield FieldRow(
                "sdk_language",
                "language",
                Select(
                    [(lang.value, lang.value) for lang in RUNNABLE_LANGUAGES],
                    value=self.language,
                    allow_blank=False,
                    compact=True,
                    id="sdk_language",
                ),
            )
            yield FieldRow(
                "tenant_type",
                "tenant type",
                Select(
                    [(tt.value, tt.value) for tt in TenantType],
                    value=TenantType.INTERNAL.value,
                    allow_blank=False,
                    compact=True,
                    id="tenant_type",
                ),
            )
            yield FieldRow("tenant_id", "tenant id", Input("default", compact=True, id="tenant_id"))
            yield FieldRow(
                "patch_reference",
                "patch",
                Select(
                    [("(loading the registry…)", NO_PATCH)],
                    value=NO_PATCH,
                    allow_blank=False,
                    compact=True,
                    id="patch_reference",
                ),
            )
            for name in SCENARIO_FIELDS:
                value = getattr(t.scenario, name)
                yield FieldRow(
                    name, name.replace("_", " "), Input(str(value), compact=True, id=name)
                )
            yield FieldRow("seed", "seed", Input(str(SEED), compact=True, id="seed"))
            yield Static("", id="form-error", classes="field-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button("Launch (ctrl+s)", id="launch", variant="primary", compact=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        for row in self.query(FieldRow):
            row.set_error(None)
        self.query_one("#form-error", Static).display = False
        self.query_one("#template", Select).focus()
        self.load_patches(self.language)

    def _auto_name(self) -> str:
        return f"{self.template.title} ({self.language})"

    # -- the patch list -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="patches")
    def load_patches(self, language: str) -> None:
        simulator, principal = self.session.open()
        try:
            patches = simulator.list_patches(principal, language=language)
        except (SimError, psycopg.Error) as exc:
            self.post_message(ActionFailed(f"patch registry: {exc}", "patch_reference"))
            return
        self.post_message(PatchesLoaded(patches, language))

    def on_patches_loaded(self, message: PatchesLoaded) -> None:
        if message.language != self.language:
            return
        self.patches = message.patches
        self._patch_options()

    def _patch_options(self) -> None:
        error = self.template.scenario.error.value
        # The template's own error first: those are the patches that make sense here.
        ordered = sorted(self.patches, key=lambda p: (p.error_signature != error, p.slug or ""))
        options = [("(no patch: baseline only)", NO_PATCH)]
        for p in ordered:
            bad = " (BAD)" if p.description.startswith("BAD") else ""
            options.append((f"{p.slug or fmt.short_id(p.id)}{bad}", str(p.id)))
        good = default_patch(error, self.language)
        known = {str(p.id) for p in self.patches}
        value = str(good.id) if good is not None and str(good.id) in known else NO_PATCH
        select: Select[str] = self.query_one("#patch_reference", Select)
        self._filling = True
        select.set_options(options)
        select.value = value
        self._filling = False
        self.validate()

    # -- reacting to input --------------------------------------------------------------------

    def _fill_from_template(self, template: Template) -> None:
        self.template = template
        self._filling = True
        for name in SCENARIO_FIELDS:
            self.query_one(f"#{name}", Input).value = str(getattr(template.scenario, name))
        if self._name_auto:
            self.query_one("#name", Input).value = self._auto_name()
        self._filling = False
        self._patch_options()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if self._filling:
            return
        control = event.select.id
        if control == "template" and isinstance(event.value, str):
            self._fill_from_template(TEMPLATES[event.value])
        elif control == "sdk_language" and isinstance(event.value, str):
            self.language = event.value
            if self._name_auto:
                self._filling = True
                self.query_one("#name", Input).value = self._auto_name()
                self._filling = False
            self.patches = []
            self.load_patches(self.language)
        self.validate()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if self._filling:
            return
        if event.input.id == "name":
            self._name_auto = event.value == self._auto_name()
        self.validate()

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()

    # -- validation ---------------------------------------------------------------------------

    def _value(self, field: str) -> str:
        widget = self.query_one(f"#{field}")
        if isinstance(widget, Input):
            return widget.value
        assert isinstance(widget, Select)
        return str(widget.value)

    def candidate(self) -> tuple[dict[str, Any], int | None, dict[str, str]]:
        """The simulation as the engine would get it, the seed, and the errors by field."""
        errors: dict[str, str] = {}
        scenario = self.template.scenario.to_json()
        for name in SCENARIO_FIELDS:
            scenario[name] = self._value(name).strip()
        patch = self._value("patch_reference")
        data: dict[str, Any] = {
            "name": self._value("name").strip(),
            "description": f"from the dashboard, template {self.template.name}",
            "tenant_type": self._value("tenant_type"),
            "tenant_id": self._value("tenant_id").strip(),
            "sdk_language": self._value("sdk_language"),
            "scenario": scenario,
            "patch_reference": None if patch == NO_PATCH else patch,
        }
        try:
            SimulationCreate.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                field = field_of(".".join(str(p) for p in error["loc"]))
                errors.setdefault(field or "form", _message(error))
        seed: int | None = None
        raw = self._value("seed").strip()
        try:
            seed = int(raw)
        except ValueError:
            pass
        if seed is None or not 0 <= seed <= MAX_SEED:
            errors["seed"] = f"must be an integer from 0 to {MAX_SEED}"
            seed = None
        return data, seed, errors

    def validate(self) -> dict[str, str]:
        _, _, errors = self.candidate()
        self.show_errors(errors)
        return errors

    def show_errors(self, errors: dict[str, str]) -> None:
        self.errors = errors
        for row in self.query(FieldRow):
            message = errors.get(row.field)
            row.set_error(f"{row.field}: {message}" if message else None)
        form = self.query_one("#form-error", Static)
        form.update(errors.get("form", ""))
        form.display = "form" in errors

    # -- launching ----------------------------------------------------------------------------

    def action_launch(self) -> None:
        if not keys.allowed(self.session.principal, "launch"):
            self.action_refuse("launch")
            return
        if self._submitting:
            return
        data, seed, errors = self.candidate()
        self.show_errors(errors)
        if errors or seed is None:
            first = next((f for f in FIELD_IDS if f in errors), None)
            if first is not None:
                self.query_one(f"#{first}").focus()
            self.say(f"{len(errors)} field(s) to fix before launching", severity="warning")
            return
        self._submitting = True
        self.submit(data, seed)

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_launch()

    @work(thread=True, exclusive=True, exit_on_error=False, group="write")
    def submit(self, data: dict[str, Any], seed: int) -> None:
        simulator, principal = self.session.open()
        try:
            simulation = simulator.create_simulation(principal, data)
            launch = simulator.launch_run(principal, simulation.id, seed)
        except InvalidInput as exc:
            self.post_message(ActionFailed(exc.reason, exc.field))
            return
        except (SimError, psycopg.Error) as exc:
            self.post_message(ActionFailed(str(exc)))
            return
        self.post_message(
            ActionDone(
                f"launched {simulation.name}: run {fmt.short_id(launch.run.id)} (seed {seed})",
                launch.run.id,
                open_run=True,
            )
        )

    def on_action_failed(self, message: ActionFailed) -> None:
        message.stop()
        self._submitting = False
        field = field_of(message.field) if message.field else None
        errors = dict(self.errors)
        errors[field or "form"] = message.text
        self.show_errors(errors)
        if field is not None:
            self.query_one(f"#{field}").focus()
        self.say(message.text, severity="error")

    def on_action_done(self, message: ActionDone) -> None:
        message.stop()
        home = self.tui.home
        self.app.pop_screen()
        home.say(message.text + " · enter opens it")
        if message.run_id is not None:
            home.select_run_when_shown(str(message.run_id))
        home.request_refresh(0)

    def action_back(self) -> None:
        self.app.pop_screen()
