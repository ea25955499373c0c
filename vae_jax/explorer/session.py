"""What the explorer shows, computed with the package's jitted functions from a loaded Model: the
map of the test set's posterior means, the latent dimensions ranked by activity, decoded points of
the latent space, interpolations, samples and the user's own image. A model whose z is discrete
shows its codes instead of the map, the sliders and the interpolation (explorer.codes).

Latents are the top group's (all of a one-latent model's). Sliders and interpolations move them in
"standard" coordinates, the prior's standard deviations from its mean (Model.to_standard; with a
class prior, of each class's Gaussian). Images come back as uint8 (H, W, C) or grids of them."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import compiling, pictures
from vae_jax.api import Model
from vae_jax.data import model_inputs
from vae_jax.data.pixels import eval_images
from vae_jax.errors import UserError
from vae_jax.explorer.codes import NOT_SHOWN, Codes
from vae_jax.explorer.projection import Projection, project
from vae_jax.objectives import terms
from vae_jax.visualize import interpolate_at, to_u8

MAX_POINTS = 10_000  # test images on the map
ACTIVITY_IMAGES = 1000  # test images whose KL ranks the latent dimensions
SLIDERS = 8  # the most active dimensions get one each
UPLOAD_K = 100  # importance samples of an uploaded image's NLL
MAX_UPLOAD_PIXELS = 25_000_000  # 5000 x 5000: a header that declares more is refused before decoding
KEPT_UPLOADS = 32  # uploads kept in memory (as model inputs) to interpolate between; the oldest go first
TEMPERATURE_STEP = 0.05  # sampling compiles once per temperature: the slider moves in these steps


@dataclass
class Session:
    """A loaded model and the test images on its map. images: uint8 (N, H, W, C); inputs: what the
    encoder sees of them (binarized once for a Bernoulli model, as evaluate.py does); labels (N,)."""

    model: Model
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    projection: Projection | None = None
    dims: list[int] = field(default_factory=list)  # latent dimensions, most active first
    activity: list[float] = field(default_factory=list)  # of each of `dims`
    activity_how: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # how long the map and the ranking took
    ready: threading.Event = field(default_factory=threading.Event)  # set once the map (or its failure) is there
    failure: str | None = None  # why there is no map, when computing it failed
    uploads: OrderedDict = field(default_factory=OrderedDict)
    tsne: dict = field(default_factory=lambda: {"state": "none"})
    lock: threading.Lock = field(default_factory=threading.Lock)
    decoder: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "upload-decoder"))
    codes: Codes | None = None  # a discrete z's codes (None: z is continuous)

    def __post_init__(self):
        vae, top = self.model.vae, self.model.vae.groups[0]
        self.codes = Codes(self.model) if vae.discrete else None
        self.show_images(self.images, self.labels)
        self._show = compiling.jit(lambda p, u, c: jnp.clip(vae.decode_top(p, vae.from_standard(p, u, c), c), 0, 1))
        self._decode = compiling.jit(lambda p, z, c: jnp.clip(vae.decode_top(p, z, c), 0, 1))
        self._top = compiling.jit(lambda p, x, c: vae.encode(p, x, c)[0][:, :top])
        self._standard = compiling.jit(vae.to_standard)

    def show_images(self, images: np.ndarray | None, labels: np.ndarray | None) -> None:
        """The test images (uint8 (N, H, W, C)) and labels (N,) the map will show, and what the encoder sees of them."""
        self.images, self.labels = images, labels
        self.inputs = None if images is None else eval_images(images, self.model.vae.likelihood.binary)
        # the background uploads are compared with: the test images' (without them, set at the first upload)
        self._background = None if images is None else float(model_inputs.backgrounds(images[:1000]).mean())

    def default_pair(self) -> tuple[int, int]:
        """Two test images to interpolate between at first: image 0 and the first of another class
        (a split ordered by class would otherwise give two of the same class), else image 1."""
        if self.images is None:
            return 0, 0
        other = np.flatnonzero(self.labels != self.labels[0]) if self.labels is not None else []
        return 0, int(other[0]) if len(other) else min(1, len(self.images) - 1)

    @property
    def autoencoder(self) -> bool:
        return not self.model.objective.defines_likelihood

    def continuous(self, panel: str) -> None:
        """Refuse what only a continuous z has (a key of codes.NOT_SHOWN) for a discrete one: UserError."""
        if self.codes is not None:
            raise UserError(NOT_SHOWN[panel])

    def cond(self, label: int | None, n: int = 1) -> jax.Array | None:
        """The condition of n examples of class `label` for a conditional model; None otherwise."""
        classes = self.model.vae.n_conditions
        if not classes:
            return None
        if label is None or not 0 <= int(label) < classes:
            raise UserError(f"this is a conditional model: choose a class in 0..{classes - 1}")
        return self.model.vae.condition(jnp.full((n,), int(label), jnp.int32))

    def source(self, src: str, label: int | None) -> tuple[jax.Array, int | None]:
        """A named image as the encoder sees it, (1, H, W, C), and its class: 'test:I' (the I-th image
        on the map, its own label) or 'upload:ID' (an upload, of class `label`)."""
        kind, _, key = str(src).partition(":")
        i = int(key) if key.isascii() and key.isdigit() else -1  # int() would take other scripts' digits too
        if kind == "test" and self.inputs is not None and 0 <= i < len(self.inputs):
            return self.inputs[i : i + 1], None if self.labels is None else int(self.labels[i])
        if kind == "upload" and key in self.uploads:
            return self.uploads[key], label
        n = 0 if self.inputs is None else len(self.inputs)
        raise UserError(f"no image {src!r}" + (f": the test images are 0..{n - 1}" if n else ""))

    def standard(self, src: str, label: int | None) -> np.ndarray:
        """The posterior mean of a named image in standard coordinates (of its own class's prior): (top,)."""
        self.continuous("sliders")
        x, own = self.source(src, label)
        c = self.cond(label if own is None else own)
        return np.asarray(self._standard(self.model.params, self._top(self.model.params, x, c), c))[0]

    def show(self, u: np.ndarray, label: int | None) -> np.ndarray:
        """Decoded means at standard coordinates u: (B, top) -> uint8 (B, H, W, C)."""
        self.continuous("sliders")
        u = np.asarray(u, np.float32).reshape(-1, self.model.vae.groups[0])
        return to_u8(self._show(self.model.params, u, self.cond(label, len(u))))

    def at_map(self, xy: tuple[float, float], label: int | None) -> np.ndarray:
        """The decoded mean at a point of the map (the projection's inverse): uint8 (H, W, C)."""
        self.continuous("map")
        if self.projection is None:
            raise UserError("there is no map: no test images were found")
        z = self.projection.inverse(np.asarray(xy, np.float64))[None].astype(np.float32)
        return to_u8(self._decode(self.model.params, z, self.cond(label)))[0]

    def interpolation(self, a: str, b: str, t: list[float], slerp: bool, label: int | None) -> np.ndarray:
        """Decoded means at positions t (each in [0, 1]) on the way between two named images' latents
        (standard coordinates, linear or spherical): uint8 (len(t), H, W, C)."""
        self.continuous("interpolation")
        ts = np.clip(np.asarray(t, np.float64), 0.0, 1.0)
        return self.show(interpolate_at(self.standard(a, label), self.standard(b, label), ts, slerp), label)

    def samples(
        self, temperature: float, label: int | None, seed: int, sampler: str = "prior", n: int = 16
    ) -> np.ndarray:
        """A grid of n samples from the prior at `temperature` (in TEMPERATURE_STEP steps): uint8. A
        discrete z's from `sampler` (Codes.samplers), at temperature 1 only."""
        if self.codes is not None:
            if temperature != 1:
                raise UserError("a discrete z has no temperature: its samples are drawn at 1")
            return self.codes.samples(sampler, seed, n)
        if sampler != "prior":
            raise UserError(f"no sampler {sampler!r} here: the explorer draws from the model's prior")
        temperature = round(float(np.clip(temperature, 0.0, 2.0)) / TEMPERATURE_STEP) * TEMPERATURE_STEP
        self.cond(label)  # a conditional model needs a valid class
        return pictures.samples(self.model, n, seed, round(temperature, 2), label)

    def upload(self, data: bytes, label: int | None) -> dict:
        """An image file's bytes, decoded in memory and prepared as the model's inputs are: what the
        model sees, its reconstruction, its place on the map and its NLL (or, for an autoencoder, its
        reconstruction error; a discrete z's: its codes and its bound under the uniform prior). It is kept
        (as a model input, never on disk) as 'upload:ID'."""
        shape = self.model.vae.image_shape
        # one image decoded at a time, always by the same thread: at most one of MAX_UPLOAD_PIXELS in
        # memory, and the memory it took reused by the next (each thread would keep its own)
        prepared, size, channels = self.decoder.submit(_decoded, data, shape).result()
        notes = []
        if size != shape[:2]:
            notes.append(f"centre-cropped and resized from {size[1]}x{size[0]} to {shape[1]}x{shape[0]}")
        if channels != shape[-1]:
            notes.append("RGB to grey" if shape[-1] == 1 else "grey to RGB")
        if self._background is None:  # no test images: the model's own samples, drawn once
            self._background = pictures.own_background(self.model)
        reference = self._background
        flipped = model_inputs.polarity(prepared[None], reference)
        if flipped:
            notes.append(f"{flipped}: upload it turned over (white for black)")
        if self.model.vae.likelihood.binary:
            notes.append("binarized once, as test images are")
        x = eval_images(prepared[None], self.model.vae.likelihood.binary)
        c = self.cond(label)
        if self.codes is None:
            z = self._top(self.model.params, x, c)
            recon, codes = to_u8(self._decode(self.model.params, z, c))[0], None
        else:
            codes, recon = self.codes.of(x)
        labels = None if c is None else np.array([label])
        result = self.model.evaluate(x, k=UPLOAD_K if codes is None else 1, labels=labels)  # codes: a point mass
        key = uuid.uuid4().hex[:12]
        with self.lock:
            self.uploads[key] = x
            while len(self.uploads) > KEPT_UPLOADS:
                self.uploads.popitem(last=False)
        if codes is not None:  # -ELBO under the uniform prior over the codes: a bound on -log p(x)
            measured = {"nll": result["nll"], "k": 1, "conditional": False, "bound": True, "codes": codes.tolist()}
        elif self.autoencoder:
            measured = {
                "recon_error": result["recon"],
                "what": "-log p(x|z) at the posterior mean (an autoencoder has no NLL)",
            }
        else:
            measured = {"nll": result["nll"], "k": result["k"], "conditional": c is not None}
        mapped = self.projection is not None and codes is None
        place = self.projection.place(np.asarray(z, np.float64)[0]).tolist() if mapped else None
        return {"id": key, "seen": to_u8(x[0]), "recon": recon, "place": place, "notes": notes, **measured}

    def image_codes(self, src: str) -> tuple[np.ndarray, np.ndarray]:
        """A named image's codes (h, w) and its reconstruction from them, uint8 (H, W, C) (a discrete z)."""
        if self.codes is None:
            raise UserError("this model's z is continuous: it has no codes")
        return self.codes.of(self.source(src, None)[0])

    def start_tsne(self, seed: int = 0) -> None:
        """Compute a t-SNE map in a thread (once); `tsne` says how far it got, the map switches when done."""
        with self.lock:
            if self.projection is None or self.tsne["state"] != "none" or self.projection.kind == "latent":
                return
            self.tsne = {"state": "running", "since": time.time()}
        latents = self.projection.latents

        def work():
            try:
                projection = project(latents, "tsne", seed)
                self.projection, self.tsne = projection, {"state": "done", "seconds": time.time() - self.tsne["since"]}
            except Exception as e:  # a failed t-SNE leaves the PCA map and says why
                self.tsne = {"state": "failed", "error": f"{type(e).__name__}: {e}"}

        threading.Thread(target=work, daemon=True).start()


def _decoded(data: bytes, shape: tuple[int, int, int]) -> tuple[np.ndarray, tuple[int, int], int]:
    """An uploaded file's bytes as the model's input pixels (uint8 `shape`), with the size and channels it had."""
    pixels = model_inputs.decode(data, MAX_UPLOAD_PIXELS)
    return model_inputs.bring(pixels, shape), pixels.shape[:2], pixels.shape[-1]


def open_session(model: Model, test_images: np.ndarray | None, test_labels: np.ndarray | None) -> Session:
    """A Session whose map shows the first MAX_POINTS test images (none: no map, the sliders in
    dimension order), with the latent dimensions ranked by activity."""
    session = Session(model)
    map_test_images(session, test_images, test_labels)
    session.ready.set()
    return session


def map_test_images(session: Session, test_images: np.ndarray | None, test_labels: np.ndarray | None) -> None:
    """Put the first MAX_POINTS test images on the session's map and rank its latent dimensions by
    activity (no test images: no map, the sliders in dimension order)."""
    model, top, t0 = session.model, session.model.vae.groups[0], time.perf_counter()
    if test_images is None:
        session.dims, session.activity_how = list(range(min(SLIDERS, top))), "no test images to rank the dimensions"
        if session.codes is not None:
            session.dims, session.activity_how = [], NOT_SHOWN["sliders"]
        return
    session.show_images(test_images[:MAX_POINTS], np.asarray(test_labels[:MAX_POINTS]))
    if session.codes is not None:  # a discrete z: how the test images use its codebook, no map or sliders
        session.codes.measure(session.inputs)
        session.seconds["map"], session.activity_how = time.perf_counter() - t0, NOT_SHOWN["sliders"]
        return
    labels = session.labels if model.vae.n_conditions else None
    means = pictures.encode_all(model, session.inputs, labels)[:, :top]
    session.projection = project(means)
    session.seconds["map"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    session.dims, session.activity, session.activity_how = _ranked(session, means, labels)
    session.seconds["ranking"] = time.perf_counter() - t1


def _ranked(session: Session, means: np.ndarray, labels: np.ndarray | None) -> tuple[list[int], list[float], str]:
    """The SLIDERS most active top-group dimensions, their activity, and what it is: the KL per
    dimension over ACTIVITY_IMAGES test images where the model has it in closed form, else the
    variance of the posterior means over the test images in prior standard deviations."""
    model, n = session.model, min(ACTIVITY_IMAGES, len(means))
    vae = model.vae  # the KL per dimension, where it has one in closed form that splits by unit
    if not session.autoencoder and vae.kl_analytic and terms.kl_columns(vae, model.params) == vae.latent_dim:
        result = model.evaluate(session.inputs[:n], k=1, labels=None if labels is None else labels[:n])
        values = np.asarray(result["kl_per_dim"][: model.vae.groups[0]])
        how = f"KL per dimension, nats, over {n:,} test images"
    else:
        c = None if labels is None else model.vae.condition(jnp.asarray(labels))
        values = np.asarray(session._standard(model.params, jnp.asarray(means, jnp.float32), c)).var(0)
        how = "variance of the posterior means over the test images, in prior standard deviations"
    order = [int(d) for d in np.argsort(-values)[:SLIDERS]]
    return order, [float(values[d]) for d in order], how
