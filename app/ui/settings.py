"""The app's preferences, in an INI file inside the data folder (so STILLROOM_HOME isolates them).

Used on the UI thread only. Reads and writes are in-memory with a sync to disk, cheap enough for
the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from app.core.models.runner import LoadOptions
from app.core.models.sampling import SamplingParams
from app.core.paths import data_dir
from app.core.privacy import create_private_file

SETTINGS_FILE = "settings.ini"
THEMES = ("system", "light", "dark")
DEFAULT_N_CTX = 4096
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "seed", "repeat_penalty")
_SAMPLING_TYPES: dict[str, type] = {
    "temperature": float, "top_p": float, "top_k": int, "min_p": float, "max_tokens": int, "repeat_penalty": float,
}


class AppSettings:
    """Typed access to the preferences: window geometry, theme, sampling defaults, model and load options."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / SETTINGS_FILE
        # Owner-only from the start; QSettings' atomic saves keep the existing file's mode.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create_private_file(self.path)
        self._q = QSettings(str(self.path), QSettings.Format.IniFormat)
        # Called as on_change(summary, {setting: {"from": old, "to": new}}) when a preference that
        # shapes generations or the app changes (theme, sampling defaults, system prompt, load options);
        # the window logs it in the event log. Window layout is not reported.
        self.on_change: Callable[[str, dict[str, Any]], None] | None = None

    def sync(self) -> None:
        """Write pending changes to disk."""
        self._q.sync()

    # -- window ----------------------------------------------------------------------------------

    def geometry(self) -> QByteArray | None:
        value = self._q.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, value: QByteArray) -> None:
        self._q.setValue("window/geometry", value)

    def splitter_state(self, name: str) -> QByteArray | None:
        value = self._q.value(f"splitters/{name}")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_splitter_state(self, name: str, value: QByteArray) -> None:
        self._q.setValue(f"splitters/{name}", value)

    @property
    def current_view(self) -> str:
        return str(self._q.value("window/view", "chat"))

    @current_view.setter
    def current_view(self, key: str) -> None:
        self._q.setValue("window/view", key)

    @property
    def theme(self) -> str:
        value = str(self._q.value("appearance/theme", "system"))
        return value if value in THEMES else "system"

    @theme.setter
    def theme(self, value: str) -> None:
        if value not in THEMES:
            raise ValueError(f"theme must be one of {', '.join(THEMES)}")
        before = self.theme
        self._q.setValue("appearance/theme", value)
        self._report("theme", {"theme": before}, {"theme": value})

    # -- chat ------------------------------------------------------------------------------------

    def has_sampling(self) -> bool:
        """Whether sampling values were ever saved (otherwise the model's defaults apply)."""
        return self._q.contains("sampling/temperature")

    def sampling(self, defaults: SamplingParams | None = None) -> SamplingParams:
        """The sampling values for new turns (`defaults`, else SamplingParams' own, where unset)."""
        defaults = defaults or SamplingParams()
        values: dict[str, Any] = {}
        for key, kind in _SAMPLING_TYPES.items():
            values[key] = self._typed(f"sampling/{key}", getattr(defaults, key), kind)
        seed = self._q.value("sampling/seed", "")
        values["seed"] = int(seed) if str(seed).strip().lstrip("-").isdigit() and int(seed) >= 0 else None
        try:
            return SamplingParams(**values)
        except ValueError:
            return defaults

    def set_sampling(self, params: SamplingParams) -> None:
        before = self.sampling()
        for key in _SAMPLING_TYPES:
            self._q.setValue(f"sampling/{key}", getattr(params, key))
        self._q.setValue("sampling/seed", "" if params.seed is None else params.seed)
        after = self.sampling()
        self._report("sampling defaults", {k: getattr(before, k) for k in SAMPLING_KEYS},
                     {k: getattr(after, k) for k in SAMPLING_KEYS})

    @property
    def system_prompt(self) -> str:
        return str(self._q.value("chat/system_prompt", ""))

    @system_prompt.setter
    def system_prompt(self, text: str) -> None:
        before = self.system_prompt
        self._q.setValue("chat/system_prompt", text)
        if before != text:  # the text itself stays out of the event log; its length says it changed
            self._report("default system prompt", {"system_prompt_chars": len(before)},
                         {"system_prompt_chars": len(text)}, force=True)

    @property
    def last_conversation(self) -> str | None:
        value = self._q.value("chat/last_conversation", "")
        return str(value) or None

    @last_conversation.setter
    def last_conversation(self, conversation_id: str | None) -> None:
        self._q.setValue("chat/last_conversation", conversation_id or "")

    # -- model -----------------------------------------------------------------------------------

    @property
    def last_model(self) -> str | None:
        """sha256 of the model loaded last, or None for the bundled chat model."""
        value = self._q.value("model/last", "")
        return str(value) or None

    @last_model.setter
    def last_model(self, sha256: str | None) -> None:
        self._q.setValue("model/last", sha256 or "")

    def load_options(self) -> LoadOptions:
        threads = self._typed("model/n_threads", 0, int)
        return LoadOptions(
            n_ctx=max(256, self._typed("model/n_ctx", DEFAULT_N_CTX, int)),
            n_gpu_layers=self._typed("model/n_gpu_layers", 0, int),
            n_threads=threads if threads > 0 else None,
            chat_format=str(self._q.value("model/chat_format", "auto")) or "auto",
        )

    def set_load_options(self, options: LoadOptions) -> None:
        before = self.load_options()
        self._q.setValue("model/n_ctx", options.n_ctx)
        self._q.setValue("model/n_gpu_layers", options.n_gpu_layers)
        self._q.setValue("model/n_threads", options.n_threads or 0)
        self._q.setValue("model/chat_format", options.chat_format)
        after = self.load_options()
        fields = ("n_ctx", "n_gpu_layers", "n_threads", "chat_format")
        self._report("model load options", {k: getattr(before, k) for k in fields},
                     {k: getattr(after, k) for k in fields})

    # -- helpers ---------------------------------------------------------------------------------

    def _report(self, what: str, before: dict[str, Any], after: dict[str, Any], force: bool = False) -> None:
        """Tell on_change which values of `what` changed (nothing when none did)."""
        changed = {key: {"from": before[key], "to": after[key]} for key in after
                   if force or before.get(key) != after[key]}
        if changed and self.on_change is not None:
            self.on_change(f"{what} changed: " + ", ".join(
                f"{key} {value['from']!r} -> {value['to']!r}" for key, value in changed.items()), changed)

    def _typed(self, key: str, default: Any, kind: type) -> Any:
        value = self._q.value(key, default)
        try:
            return kind(value)
        except (TypeError, ValueError):
            return default
