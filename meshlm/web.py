"""The web demo: a chat that writes and reads meshes, with a live 3D viewer (Gradio).

    from meshlm.web import Demo
    Demo(model="meshlm/models/meshlm-bundled").build().launch()     # or: meshlm serve

A text prompt ("a round table") streams a mesh; the viewer shows the faces written so far and,
when the reply ends, OBJ and GLB downloads and the repair report appear. A prompt with a mesh
file attached asks the model about that mesh (it is encoded into the conversation). Questions
("what is a mesh?") get a free-text reply.

:class:`Demo` holds the logic; :meth:`Demo.turn` is a plain generator of :class:`Update` that tests
drive without a browser, and :meth:`Demo.build` wires it into Gradio. The engine is loaded lazily
(or passed in), so the app can be built before a model exists.

Known limit: a reply stopped early (time limit, Stop button) stops being read, but the
transformers backend's worker thread runs on to its ``max_new_tokens`` (at most
:data:`MAX_NEW_TOKENS`) in the background, until the backend learns to cancel.

One idea: the web demo -- a chat turn as a stream of :class:`Update` within the ``MAX_*``
limits, and the Gradio page that shows it; kept in one module because the page
(:meth:`Demo.build`, :func:`serve`) is thin wiring over :class:`Demo`, and both share the limits
and the update stream.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshlm.codec import canonicalize
from meshlm.errors import MeshlmError
from meshlm.files import MeshFileTooLargeError, TooManyFacesError, load_mesh_bytes, save_mesh
from meshlm.infer import Sampling, load
from meshlm.prompts import as_request, mesh_question, wants_mesh

# --- limits: enforced by Demo.turn (and the queue); over a limit the user is told why -----------
MAX_PROMPT_CHARS = 2000  # characters of one typed prompt
MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # bytes of one uploaded mesh file
MAX_UPLOAD_FACES = 1000  # triangles of an uploaded mesh (its text must fit the model's context)
MAX_HISTORY_CHARS = 24_000  # older turns are dropped from what the model sees beyond this
MAX_NEW_TOKENS = 8192  # upper end of the "max new tokens" setting
MAX_GENERATION_SECONDS = 180.0  # a reply is stopped (and kept as far as it got) after this
MAX_CONCURRENT = 1  # generations running at once (Gradio queue concurrency)
MAX_QUEUE = 32  # requests waiting in the queue; more are refused by Gradio
# The live viewer gets a new GLB after this many new faces or this many seconds (if any new face).
VIEWER_EVERY_FACES = 16
VIEWER_EVERY_SECONDS = 0.5
TEXT_EVERY_SECONDS = 0.1  # chat text refresh while streaming

UPLOAD_TYPES = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")
EXAMPLES = [
    "a toy car with four wheels",
    "a round table with three legs",
    "a simple house with a pointed roof",
    "Create a 3D model of a mug.",
    "What is a mesh?",
]
_MESH_LINES = re.compile(r"(?ms)^[vf] [^\n]*(?:\n[vf] [^\n]*)*\n?")
log = logging.getLogger(__name__)


class LimitError(MeshlmError):
    """A request over one of the limits above; the message says which and by how much."""


def display_reply(text: str) -> str:
    """The reply as chat Markdown: runs of ``v``/``f`` lines go into code blocks."""
    return _MESH_LINES.sub(lambda m: f"\n```\n{m.group(0).rstrip(chr(10))}\n```\n", text).strip()


def trim_history(history: list[dict], budget: int = MAX_HISTORY_CHARS) -> list[dict]:
    """The newest turns of ``history`` whose contents fit ``budget`` characters (the last turn is
    always kept; a leading assistant turn left after dropping is dropped too)."""
    kept: list[dict] = []
    total = 0
    for msg in reversed(history):
        total += len(msg["content"])
        if kept and total > budget:
            break
        kept.append(msg)
    kept.reverse()
    while len(kept) > 1 and kept[0]["role"] == "assistant":
        kept.pop(0)
    return kept


class _Keep:
    """Sentinel: leave this output as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass
class Update:
    """What one step of a turn shows. ``chat`` is the displayed conversation (Gradio "messages"
    dicts), ``history`` what the model sees (meshes as text); ``viewer`` a GLB path (None clears,
    KEEP leaves it); ``files`` the download paths; ``report`` Markdown under the viewer;
    ``warning`` a message to pop up (a limit or an error)."""

    chat: list[dict]
    history: list[dict]
    viewer: Any = KEEP
    files: Any = KEEP
    report: Any = KEEP
    warning: str | None = None
    done: bool = False

    def __post_init__(self):  # a snapshot: the turn goes on changing its own lists
        self.chat, self.history = list(self.chat), list(self.history)


@dataclass
class Settings:
    """The settings panel, passed to :class:`meshlm.infer.Sampling` over the model's recommended
    decoding (``temperature`` None: the model's, see :meth:`Demo.default_temperature`)."""

    temperature: float | None = None
    max_new_tokens: int = 1024
    constrain: bool = True
    seed: int = 0

    def sampling(self, defaults: dict | None = None):
        """:class:`Sampling` from these settings over ``defaults`` (the engine's
        ``sampling_defaults``)."""
        if not 1 <= int(self.max_new_tokens) <= MAX_NEW_TOKENS:
            raise LimitError(
                f"max new tokens must be 1..{MAX_NEW_TOKENS}, got {self.max_new_tokens}"
            )
        mine = dict(
            max_new_tokens=int(self.max_new_tokens),
            constrain=bool(self.constrain),
            seed=int(self.seed or 0),
        )
        if self.temperature is not None:
            mine["temperature"] = float(self.temperature)
        return Sampling(**{**(defaults or {}), **mine})


@dataclass
class Demo:
    """The demo's state that outlives a request: the engine (loaded on first use from ``model``,
    None = bundled) and a folder for GLB/OBJ files (a fresh temp folder unless given)."""

    engine: Any = None
    model: str | None = None
    workdir: Path | None = None
    threads: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="meshlm-web-"))
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def default_temperature(self) -> float:
        """The settings panel's first temperature: the loaded model's recommended one (its
        generation_config.json; 0 = greedy), else meshlm's default."""
        if self.engine is None:
            return Sampling().temperature
        return self.engine.default_sampling().temperature

    def get_engine(self):
        """The engine, loading it on first call. Raises MeshlmError if the model cannot load."""
        with self._lock:
            if self.engine is None:
                self.engine = load(self.model, threads=self.threads)
            return self.engine

    # -- files ------------------------------------------------------------------------------------

    def _path(self, tag: str, ext: str) -> Path:
        return self.workdir / f"{tag}-{uuid.uuid4().hex[:10]}.{ext}"

    def write(self, mesh, tag: str, ext: str = "glb") -> str:
        """Write ``mesh`` (codec Mesh) as ``ext`` into the work folder; returns the path."""
        return str(save_mesh(mesh, self._path(tag, ext)))

    def load_upload(self, path: str | Path):
        """Read an uploaded mesh file within the upload limits -> (codec Mesh, one-line summary).
        The mesh is quantized at the model's bins (the engine is loaded once the file passed
        the limits).

        Raises LimitError (too large, too many faces) or another MeshlmError (unreadable)."""
        p = Path(path)
        name = p.name
        size = p.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise LimitError(
                f"{name}: {size / 1e6:.1f} MB is over the upload limit of "
                f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB"
            )
        try:
            tm = load_mesh_bytes(
                p.read_bytes(),
                p.suffix,
                name=name,
                max_bytes=MAX_UPLOAD_BYTES,
                max_faces=MAX_UPLOAD_FACES,
            )
        except (MeshFileTooLargeError, TooManyFacesError) as exc:
            raise LimitError(f"{exc}: simplify the mesh first") from None
        mesh = canonicalize(tm.vertices, tm.faces, bins=self.get_engine().bins)
        if len(mesh.faces) > MAX_UPLOAD_FACES:
            raise LimitError(
                f"{name}: {len(mesh.faces)} faces is over the limit of {MAX_UPLOAD_FACES}"
            )
        return mesh, f"{name} ({len(mesh.quantized)} vertices, {len(mesh.faces)} faces)"

    # -- one turn ----------------------------------------------------------------------------------

    def turn(
        self,
        message: dict | str | None,
        chat: list[dict] | None,
        history: list[dict] | None,
        settings: Settings | None = None,
    ) -> Iterator[Update]:
        """Answer one user message; yields :class:`Update` as the reply streams (last: ``done``).

        ``message`` is a MultimodalTextbox value ``{"text", "files"}`` or a plain string. With a
        mesh file attached the reply is free text about that mesh; otherwise a prompt that
        :func:`wants_mesh` gets a mesh (constrained if ``settings.constrain``), a question free
        text. Limits and errors never raise: they come back as ``warning`` and a chat line.
        """
        chat = list(chat or [])
        history = list(history or [])
        settings = settings or Settings()
        text, files = _unpack(message)
        try:
            sampling = settings.sampling()
            if len(text) > MAX_PROMPT_CHARS:
                raise LimitError(
                    f"the prompt has {len(text)} characters; the limit is {MAX_PROMPT_CHARS}"
                )
            if not text and not files:
                raise LimitError("type a prompt or attach a mesh file")
            if len(files) > 1:
                raise LimitError("attach one mesh file at a time")
            viewer = KEEP
            if files:
                mesh, summary = self.load_upload(files[0])
                shown = f"Attached {summary}" + (f"\n\n{text}" if text else "")
                user_turn = {  # the mesh written in the model's own format
                    "role": "user",
                    "content": mesh_question(
                        mesh, text or None, fmt=self.get_engine().mesh_format.name
                    ),
                }
                viewer = self.write(mesh, "upload")
                want_mesh = False
            else:
                want_mesh = wants_mesh(text)
                shown = text
                user_turn = {"role": "user", "content": as_request(text) if want_mesh else text}
        except MeshlmError as exc:
            shown = text if len(text) <= 300 else f"{text[:300]}… ({len(text)} characters)"
            chat.append({"role": "user", "content": shown or "(attachment)"})
            chat.append({"role": "assistant", "content": f"⚠️ {exc}"})
            yield Update(chat, history, warning=str(exc), done=True)
            return

        chat.append({"role": "user", "content": shown})
        chat.append({"role": "assistant", "content": "…"})
        yield Update(chat, history, viewer=viewer, files=None, report="")
        try:
            engine = self.get_engine()
        except MeshlmError as exc:
            msg = f"the model is not available: {exc}"
            chat[-1] = {"role": "assistant", "content": f"⚠️ {msg}"}
            yield Update(chat, history, warning=msg, done=True)
            return
        sampling = settings.sampling(engine.sampling_defaults)
        yield from self._stream(engine, chat, history, user_turn, sampling, want_mesh)

    def _stream(self, engine, chat, history, user_turn, sampling, want_mesh) -> Iterator[Update]:
        convo = trim_history(history + [user_turn])
        parts = engine.stream(convo, sampling, mesh=want_mesh)
        last = None
        glbs: list[str] = []
        shown_faces, t_view, t_text = 0, 0.0, 0.0
        timed_out = False
        try:
            for last in parts:
                if last.done:
                    break
                if last.seconds > MAX_GENERATION_SECONDS:
                    timed_out = True
                    break
                now = time.perf_counter()
                new_faces = last.faces - shown_faces
                viewer = KEEP
                if new_faces > 0 and (
                    new_faces >= VIEWER_EVERY_FACES or now - t_view >= VIEWER_EVERY_SECONDS
                ):
                    mesh = last.mesh(engine.bins, engine.mesh_format.name)
                    if mesh is not None and len(mesh.faces):
                        glbs.append(self.write(mesh, "partial"))
                        viewer, shown_faces, t_view = glbs[-1], last.faces, now
                if viewer is KEEP and now - t_text < TEXT_EVERY_SECONDS:
                    continue
                t_text = now
                chat[-1] = {"role": "assistant", "content": display_reply(last.text) or "…"}
                yield Update(
                    chat,
                    history,
                    viewer=viewer,
                    report=f"writing… {last.vertices} vertices, {last.faces} faces, "
                    f"{last.tokens} tokens ({last.tokens_per_s:.0f} tok/s)",
                )
        except MeshlmError as exc:
            msg = f"generation failed: {exc}"
            chat[-1] = {"role": "assistant", "content": f"⚠️ {msg}"}
            yield Update(chat, history, warning=msg, done=True)
            return
        finally:
            parts.close()  # stops reading; see 'Known limit' in the module docstring
        yield self._finish(engine, chat, history, user_turn, last, timed_out, want_mesh, glbs)

    def _finish(self, engine, chat, history, user_turn, last, timed_out, want_mesh, glbs):
        if last is None:  # the backend produced nothing at all
            chat[-1] = {"role": "assistant", "content": "(empty reply)"}
            return Update(chat, history, done=True)
        text = last.text
        warning = None
        notes = []
        if timed_out:
            mesh = last.mesh(engine.bins, engine.mesh_format.name)
            warning = (
                f"stopped after {MAX_GENERATION_SECONDS:.0f} s (the generation time "
                "limit); the faces written so far are kept"
            )
            notes.append(f"Time limit: {warning}.")
            stats = f"{last.tokens} tokens in {last.seconds:.1f} s ({last.tokens_per_s:.0f} tok/s)"
        else:
            r = last.result
            mesh = r.mesh
            if mesh is None and not want_mesh:
                # a mesh in a free-text reply
                mesh = last.mesh(engine.bins, engine.mesh_format.name)
            s = r.stats
            stats = f"{s.new_tokens} tokens in {s.seconds:.1f} s ({s.tokens_per_s:.0f} tok/s)"
            if s.cut_off:
                notes.append(
                    "Cut off at the max-new-tokens setting"
                    + (": complete faces kept." if want_mesh else ".")
                )
            if want_mesh and mesh is None and r.error:
                notes.append(f"no mesh: {r.error}")
        report = [stats]
        files, viewer = None, KEEP
        if mesh is not None and len(mesh.faces):
            viewer = self.write(mesh, "mesh", "glb")
            files = [self.write(mesh, "mesh", "obj"), viewer]
            report.insert(0, f"**{len(mesh.quantized)} vertices, {len(mesh.faces)} faces**")
            if not mesh.report.clean:
                report.append(f"repairs: {mesh.report.summary()}")
        for old in glbs:  # partial previews: superseded (Gradio serves copies from its cache)
            Path(old).unlink(missing_ok=True)
        report += notes
        body = display_reply(text) or "(empty reply)"
        if timed_out:
            body += f"\n\n⚠️ {warning}."
        chat[-1] = {"role": "assistant", "content": body}
        history = history + [user_turn, {"role": "assistant", "content": text}]
        return Update(
            chat,
            history,
            viewer=viewer,
            files=files,
            report="  \n".join(report),
            warning=warning,
            done=True,
        )

    # -- the Gradio app ------------------------------------------------------------------------

    def build(self):
        """The Gradio Blocks app (queued with the concurrency limits above); call ``.launch()``."""
        import gradio as gr

        with gr.Blocks(title="meshlm", delete_cache=(600, 3600)) as app:
            history = gr.State([])
            gr.Markdown(
                "## meshlm — chat in 3D meshes\nAsk for an object to watch its mesh "
                "being written, or attach a mesh file (OBJ, GLB, PLY, STL, OFF) and ask "
                "about it."
            )
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Chat", height=520, elem_id="chat", buttons=["copy"])
                    box = gr.MultimodalTextbox(
                        placeholder="Describe an object, or attach a mesh and ask about it",
                        file_types=list(UPLOAD_TYPES),
                        file_count="single",
                        show_label=False,
                        elem_id="prompt",
                        stop_btn=True,
                        max_plain_text_length=10 * MAX_PROMPT_CHARS,
                    )  # longer: pasted as file
                    gr.Examples(EXAMPLES, inputs=box, label="Examples")
                with gr.Column(scale=2):
                    viewer = gr.Model3D(
                        label="Mesh",
                        height=400,
                        elem_id="viewer",
                        clear_color=(0.96, 0.96, 0.97, 1.0),
                    )
                    report = gr.Markdown(elem_id="report")
                    downloads = gr.File(
                        label="Downloads (OBJ, GLB)",
                        file_count="multiple",
                        interactive=False,
                        elem_id="downloads",
                    )
                    with gr.Accordion("Settings", open=False):
                        temperature = gr.Slider(
                            0.0,
                            1.5,
                            value=self.default_temperature(),
                            step=0.05,
                            label="Temperature (0 = greedy)",
                        )
                        max_tokens = gr.Slider(
                            64,
                            MAX_NEW_TOKENS,
                            value=1024,
                            step=64,
                            label="Max new tokens",
                            elem_id="max-tokens",
                        )
                        constrain = gr.Checkbox(
                            value=True, label="Constrained decoding (only valid mesh text)"
                        )
                        seed = gr.Number(value=0, precision=0, label="Seed")
                    clear = gr.Button("New conversation")

            def respond(message, chat, hist, t, n, c, s):
                settings = Settings(temperature=t, max_new_tokens=n, constrain=c, seed=s)
                yield {"text": "", "files": []}, *_gradio(None, gr)  # clear the box at once
                for up in self.turn(message, chat, hist, settings):
                    if up.warning:
                        gr.Warning(up.warning)
                    yield gr.skip(), *_gradio(up, gr)
                # Gradio repeats the last yield when the event completes; Model3D (gradio 6.31)
                # drops a GLB still loading when it gets the same value again: end on a no-op.
                yield (gr.skip(),) * 6

            outputs = [box, chatbot, history, viewer, downloads, report]
            event = box.submit(
                respond,
                [box, chatbot, history, temperature, max_tokens, constrain, seed],
                outputs,
                concurrency_limit=MAX_CONCURRENT,
                concurrency_id="generate",
                show_progress="hidden",
            )
            box.stop(None, None, None, cancels=[event])
            clear.click(
                lambda: ([], [], None, None, ""),
                None,
                [chatbot, history, viewer, downloads, report],
                queue=False,
            )
        app.queue(max_size=MAX_QUEUE, default_concurrency_limit=MAX_CONCURRENT)
        return app

    def close(self) -> None:
        """Delete the work folder."""
        shutil.rmtree(self.workdir, ignore_errors=True)


def _unpack(message) -> tuple[str, list[str]]:
    if message is None:
        return "", []
    if isinstance(message, str):
        return message.strip(), []
    files = [
        f if isinstance(f, str) else (f.get("path") or f.get("name"))
        for f in (message.get("files") or [])
    ]
    return (message.get("text") or "").strip(), [f for f in files if f]


def _gradio(up: Update | None, gr) -> tuple:
    """An Update as the outputs (chatbot, history, viewer, downloads, report); KEEP -> skip."""
    if up is None:
        return (gr.skip(),) * 5
    return tuple(
        gr.skip() if v is KEEP else v for v in (up.chat, up.history, up.viewer, up.files, up.report)
    )


def serve(
    model: str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    engine=None,
    block: bool = True,
    threads: int | None = None,
):
    """Load the model (``None`` = bundled) and serve the demo on ``host:port``.

    Raises MeshlmError if the model cannot load (before anything listens). Returns what
    ``Blocks.launch`` returns (only when ``block=False``; otherwise it serves until interrupted).
    """
    demo = Demo(engine=engine, model=model, threads=threads)
    demo.get_engine()
    app = demo.build()
    return app.launch(
        server_name=host,
        server_port=port,
        max_file_size=MAX_UPLOAD_BYTES,
        show_error=True,
        prevent_thread_lock=not block,
        footer_links=[],
    )
