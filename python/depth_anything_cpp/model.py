"""The model class: :class:`DepthAnything3` loads a GGUF into the compiled core and runs
``inference`` (the signature of the official ``depth_anything_3.api.DepthAnything3``)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._native import get_core
from .arguments import (BACKENDS, PRECISIONS, _check_choice, _check_n_threads, _check_unported,
                        check_inference_args, export_plan, take_image_alias)
from .errors import ModelFormatError, ModelNotFoundError
from .images import DEFAULT_MAX_IMAGE_PIXELS, ImageInput, count_images, input_paths, load_images
from .prediction import Prediction, prediction_from_result


class DepthAnything3:
    """A Depth Anything 3 model loaded from a GGUF file into the ggml core.

    Create it as the official class, ``DepthAnything3(model_name="da3-small")`` or
    :meth:`from_pretrained` (preset name, Hugging Face repo id, official snapshot directory
    or GGUF), or with :meth:`from_file` (a local GGUF); optionally :meth:`to` a device;
    then call :meth:`inference`.
    A model serializes its own inference calls; separate models run in parallel.
    """

    def __init__(self, model_name: Union[str, "os.PathLike[str]"] = "da3-large", *,
                 variant: Optional[str] = None, n_threads: Optional[int] = None, backend: str = "cpu",
                 device: int = -1, metric_path: Optional[Union[str, "os.PathLike[str]"]] = None,
                 precision: str = "auto", **hub_kwargs: Any) -> None:
        """Load a model, as the official ``DepthAnything3(model_name="da3-large")``.

        ``model_name``: a preset name (``"da3-small"`` ... ``"da3nested-giant-large"``, the
        1.1 checkpoints ``"da3-large-1.1"``, ``"da3-giant-1.1"``,
        ``"da3nested-giant-large-1.1"``), a Hugging Face repo id, a snapshot directory or a
        GGUF file: everything but a GGUF file goes through :meth:`from_pretrained`'s
        resolution (download once, convert once, cached); ``hub_kwargs`` are its
        ``filename``, ``revision``, ``cache_dir``, ``local_files_only`` and ``token``. The
        other arguments and the errors are those of :meth:`from_file` and
        :meth:`from_pretrained`.
        """
        if metric_path is None and not (isinstance(model_name, (str, os.PathLike))
                                        and Path(model_name).expanduser().is_file()):
            from .hub import resolve_model

            bad = set(hub_kwargs) - {"filename", "revision", "cache_dir", "local_files_only", "token"}
            if bad:
                raise TypeError(f"DepthAnything3: unexpected keyword(s) {', '.join(sorted(bad))}")
            hub = dict(hub_kwargs)
            hub["hub_cache_dir"] = hub.pop("cache_dir", None)
            model_name = resolve_model(model_name, **hub)
        elif hub_kwargs:
            raise TypeError(f"DepthAnything3: {', '.join(sorted(hub_kwargs))} only apply to models loaded by name")
        self._load(model_name, variant=variant, n_threads=n_threads, backend=backend, device=device,
                   metric_path=metric_path, precision=precision)

    def _load(self, path: Union[str, "os.PathLike[str]"], *, variant: Optional[str], n_threads: Optional[int],
              backend: str, device: int, metric_path: Optional[Union[str, "os.PathLike[str]"]],
              precision: str) -> None:
        path = Path(path).expanduser()
        metric = None if metric_path is None else Path(metric_path).expanduser()
        threads = _check_n_threads(n_threads)
        _check_choice("backend", backend, BACKENDS)
        _check_choice("precision", precision, PRECISIONS)
        if isinstance(device, bool) or not isinstance(device, (int, np.integer)):
            raise TypeError(f"device: expected int, got {type(device).__name__}")
        for p in (path,) if metric is None else (path, metric):
            if not p.exists():
                raise ModelNotFoundError(f"model file not found: {p}")
            if not p.is_file():
                raise IsADirectoryError(
                    f"{p}: is a directory; use DepthAnything3.from_pretrained for snapshot directories"
                )
            with open(p, "rb") as f:
                magic = f.read(4)
            if magic != b"GGUF":
                raise ModelFormatError(
                    f"{p}: not a GGUF file (magic {magic!r}); convert official checkpoints with "
                    "`da3cpp convert` or use DepthAnything3.from_pretrained"
                )
        self._core = get_core(variant)
        self._path = path
        self._metric = metric
        self._threads = threads
        self._backend = backend
        self._precision = precision
        self._model = self._core.Model(str(path), n_threads=threads, backend=backend, device=int(device),
                                       metric_path=None if metric is None else str(metric), precision=precision)
        self._info = dict(self._model.info())

    @classmethod
    def _from_path(cls, path: Union[str, "os.PathLike[str]"], **kwargs: Any) -> "DepthAnything3":
        self = cls.__new__(cls)
        self._load(path, **kwargs)
        return self

    def _check_feat_layers(self, layers: Any) -> tuple:
        """export_feat_layers -> unique block indices in [0, depth), in the given order."""
        if layers is None:
            return ()
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise TypeError(f"export_feat_layers: expected a sequence of int, got {type(layers).__name__}")
        layers = list(layers)
        depth = int(self._info.get("depth", 0))
        for i in layers:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise TypeError(f"export_feat_layers: expected ints, got {i!r}")
            if not 0 <= i < depth:
                raise ValueError(f"export_feat_layers: layer {i} out of range for this model's {depth} blocks")
        return tuple(dict.fromkeys(int(i) for i in layers))

    def to(self, device: Any) -> "DepthAnything3":
        """Move the model to a device, as the official ``model.to(device)``: ``"cpu"``,
        ``"cuda"`` / ``"cuda:<index>"`` (the CUDA variant), ``"vulkan"`` /
        ``"vulkan:<index>"`` (the Vulkan variant), ``"gpu"`` (the GPU backend of the
        running variant); a ``torch.device`` works through its ``str``. The weights are
        reloaded from the same file. Returns ``self``.

        Raises:
            ValueError: an unknown device name or index.
            VariantError: this installation has no such variant (the message lists those
                it has), or this CPU cannot run it.
            BackendError: the variant finds no usable device.
        """
        from . import _variants

        text = str(device).strip().lower()
        name, _, index = text.partition(":")
        try:
            idx = int(index) if index else -1
        except ValueError:
            raise ValueError(f"device {device!r}: bad index {index!r}") from None
        if idx < -1:
            raise ValueError(f"device {device!r}: index must be >= 0")
        current = self.variant
        if name == "cpu":
            variant = None if _variants._VARIANTS.get(current, ("", "cpu"))[1] == "cpu" else "cpu"
            backend = "cpu"
        elif name in ("cuda", "vulkan"):
            variant, backend = (None if current == name else name), "gpu"
        elif name == "gpu":
            variant, backend = None, "gpu"
        else:
            raise ValueError(f"device {device!r}: expected 'cpu', 'cuda', 'vulkan' or 'gpu' (optionally ':<index>')")
        if variant is None and backend == self._backend and idx == -1:
            return self
        core = self._core if variant is None else get_core(variant)
        model = core.Model(str(self._path), n_threads=self._threads, backend=backend, device=idx,
                           metric_path=None if self._metric is None else str(self._metric),
                           precision=self._precision)
        self._core, self._model, self._backend = core, model, backend
        self._info = dict(model.info())
        return self

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"], variant: Optional[str] = None,
                  n_threads: Optional[int] = None, backend: str = "cpu", device: int = -1,
                  metric_path: Optional[Union[str, "os.PathLike[str]"]] = None,
                  precision: str = "auto") -> "DepthAnything3":
        """Load a GGUF file in the depth-anything.cpp layout.

        Args:
            path: the .gguf file (published depth-anything.cpp files or ``da3cpp convert`` output).
                With ``metric_path``: the any-view file of a nested pair (da3-giant).
            variant: compiled core variant to use (e.g. ``"cpu_avx2"``); overrides the
                ``DA3CPP_VARIANT`` environment variable. None: the one chosen at import.
            n_threads: CPU threads; None or 0 = number of physical cores.
            backend: ``"cpu"``, ``"gpu"`` (Vulkan/CUDA if this build has one) or ``"auto"``
                (first GPU if any, else CPU).
            device: GPU device index for ``backend="gpu"``; -1 = the first GPU.
            metric_path: the metric file (da3metric-large) of the nested da3nested-giant-large
                model published as two files; the result is the same model as one nested file.
            precision: arithmetic of the ViT's linear layers on the CPU backend: ``"f32"`` (exact,
                the parity mode), ``"bf16"`` (f32/f16 weights and the activations rounded to bf16,
                f32 sums, on the CPU's AMX-BF16 or AVX512-BF16 engine: depth correlation >= 0.9999
                against f32, see the README; f32 where the CPU has neither) or ``"auto"`` (f32 for
                f32 files, bf16 for f16/bf16 files). q8_0/q4_k linears stay int8; GPU backends ignore it.
                ``info()["linear_engine"]`` says what runs them.

        Raises:
            ModelNotFoundError: ``path`` does not exist (a ``FileNotFoundError``).
            IsADirectoryError: ``path`` is a directory.
            ModelFormatError: not a GGUF / not a DA3 GGUF / missing or misshaped tensors;
                metadata of the wrong type, out of range or contradicting the tensors; a NaN or
                inf in the weights (the message names the key or tensor); a nested pair in
                the wrong order or of the wrong kinds (the message names both files).
            UnsupportedError: a tensor type, activation or model kind this build does not
                support.
            VariantError: the core (or the requested variant) cannot be loaded.
            BackendError: the requested backend cannot be initialised.
            ValueError, TypeError: bad argument values/types.
        """
        return cls._from_path(path, variant=variant, n_threads=n_threads, backend=backend, device=device,
                              metric_path=metric_path, precision=precision)

    @classmethod
    def from_pretrained(cls, name_or_path: Union[str, "os.PathLike[str]"], *, filename: Optional[str] = None,
                        revision: Optional[str] = None, cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                        local_files_only: bool = False, token: Optional[str] = None,
                        variant: Optional[str] = None, n_threads: Optional[int] = None,
                        backend: str = "cpu", device: int = -1, precision: str = "auto") -> "DepthAnything3":
        """Load from a GGUF file, an official snapshot directory, a Hugging Face repo id
        (``"depth-anything/DA3-SMALL"``) or a short preset name (``"da3-small"``,
        ``"da3nested-giant-large-1.1"``: see ``depth_anything_cpp.hub.PRESETS``).

        Snapshots (``config.json`` + ``model.safetensors``, e.g. ``"depth-anything/DA3-SMALL"``
        downloaded with ``huggingface_hub``) are converted once to GGUF into the user cache
        (``$DA3CPP_CACHE`` or ``~/.cache/depth-anything-cpp``). ``filename`` picks one file of
        a repository of GGUF files. ``revision``, ``cache_dir`` (Hugging Face cache),
        ``local_files_only`` and ``token`` go to ``huggingface_hub``. The other arguments
        are those of :meth:`from_file`.

        Raises:
            ModelLoadError: download impossible (offline with nothing cached, unknown repo,
                network error, huggingface_hub missing).
            plus everything :meth:`from_file` and the converter raise.
        """
        from .hub import resolve_model

        gguf = resolve_model(name_or_path, filename=filename, revision=revision,
                             hub_cache_dir=cache_dir, local_files_only=local_files_only, token=token)
        return cls._from_path(gguf, variant=variant, n_threads=n_threads, backend=backend, device=device,
                              metric_path=None, precision=precision)

    def close(self) -> None:
        """Free the model's memory now (weights and buffers; a call running in another thread
        finishes first). Further calls raise ValueError. Also done by ``with`` blocks:
        ``with DepthAnything3.from_file(p) as model: ...``."""
        self._model.close()

    def __enter__(self) -> "DepthAnything3":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def path(self) -> Path:
        """The GGUF file this model was loaded from."""
        return self._path

    @property
    def info(self) -> dict:
        """Model description from the core (preset, embed_dim, depth, out_layers,
        has_camera_decoder, has_camera_encoder, has_aux_head, has_sky, is_metric,
        weight_type, image_mean, image_std, weights_bytes, weights_read_bytes, ...). A copy,
        read now: ``weights_read_bytes`` grows when the camera encoder (first call with input
        poses) or the aux ray head (first ``use_ray_pose``) is read from the file."""
        return dict(self._model.info())

    @property
    def variant(self) -> str:
        """Name of the compiled core variant running this model."""
        return str(self._core.variant())

    def __repr__(self) -> str:
        return (f"DepthAnything3(path={str(self._path)!r}, preset={self._info.get('preset')!r}, "
                f"weights={self._info.get('weight_type')!r}, backend={self._backend!r})")

    def inference(self, image: Union[ImageInput, Sequence[ImageInput]] = None, extrinsics: Any = None,
                  intrinsics: Any = None, align_to_input_ext_scale: bool = True, infer_gs: bool = False,
                  use_ray_pose: bool = False, ref_view_strategy: str = "saddle_balanced",
                  render_exts: Any = None, render_ixts: Any = None, render_hw: Any = None,
                  process_res: int = 504, process_res_method: str = "upper_bound_resize",
                  export_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                  export_format: str = "mini_npz", export_feat_layers: Optional[Sequence[int]] = None,
                  conf_thresh_percentile: float = 40.0, num_max_points: int = 1_000_000,
                  show_cameras: bool = True, feat_vis_fps: int = 15,
                  export_kwargs: Optional[dict] = None, *, compute_aux: bool = False,
                  taps: Optional[Sequence[str]] = None,
                  max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, downscale_large_images: bool = False,
                  images: Union[ImageInput, Sequence[ImageInput]] = None) -> Prediction:
        """Run the network on the N views of one scene (one batch along the view axis).

        The signature is ``depth_anything_3.api.DepthAnything3.inference`` (0.1.1): same
        names, order and defaults (``export_kwargs=None`` means the official ``{}``), then
        our keyword-only extras ``compute_aux``, ``taps`` and ``images`` (a deprecated
        alias of ``image``).

        Args:
            image: list of paths, PIL images or uint8 arrays (H, W[, 1|3|4]), or one image,
                or an (N, H, W, C) uint8 array (see :func:`depth_anything_cpp.images.load_images`).
                EXIF orientation is applied. Views of different sizes are center-cropped to
                the smallest processed size, as upstream.
            extrinsics: optional (N, 3, 4) or (N, 4, 4) world-to-camera matrices (OpenCV);
                needs ``intrinsics`` and a model with a camera encoder.
            intrinsics: optional (N, 3, 3) pixel intrinsics of the ORIGINAL images. Alone
                (no extrinsics), only for models without a camera decoder (mono/metric):
                metric-large depth is scaled to metres with them, and the prediction carries
                them (at H x W) with identity extrinsics so points and exports work.
            align_to_input_ext_scale: with input poses, return them and rescale depth to their
                scale (True, default) or return the predicted poses aligned to them (False).
            infer_gs: the 3D Gaussian head is not ported: True raises UnsupportedError.
            use_ray_pose: estimate poses from the aux ray head instead of the camera decoder
                (needs a model file with the aux head).
            ref_view_strategy: reference view choice with >= 3 views and no input poses:
                ``"saddle_balanced"`` (default), ``"first"``, ``"middle"``, ``"saddle_sim_range"``.
            render_exts, render_ixts, render_hw: Gaussian video rendering, not ported: a
                value other than None raises UnsupportedError.
            process_res: target size in pixels (14 to 8192) of the longest side
                (``upper_bound_resize``) or the shortest side (``lower_bound_resize``); each
                side is then rounded to a multiple of the patch size 14. Small images are
                upscaled to it: time and memory grow with its square (and faster in the
                attention), whatever the input size.
            process_res_method: ``"upper_bound_resize"`` (default) or ``"lower_bound_resize"``
                (the ``*_crop`` methods raise UnsupportedError).
            export_dir: when given, write the prediction there with
                :func:`depth_anything_cpp.exports.export` (directory created if missing).
            export_format: format names joined by ``-`` (``"mini_npz"``, ``"npz"``,
                ``"glb"``, ``"colmap"``, ``"depth_vis"``, ``"depth"``, ``"disparity"``,
                ``"ply"``, ``"feat_vis"``), validated before the network runs; ``gs_ply`` and
                ``gs_video`` raise UnsupportedError.
            export_feat_layers: backbone block indices whose output features are returned
                as ``aux["feat_layer_<i>"]``: (N, H/14, W/14, C) float32, the final norm
                applied, without the camera token (as upstream; views in input order).
            conf_thresh_percentile: [GLB, PLY, COLMAP] lower confidence percentile (40).
            num_max_points: [GLB, PLY] maximum number of points (1,000,000).
            show_cameras: [GLB] draw the camera frustums (True).
            feat_vis_fps: [feat_vis] frame rate of the feature videos (15).
            export_kwargs: per-format option dicts, e.g. ``{"glb": {"camera_size": 0.05,
                "sky_depth_def": 98.0}, "colmap": {"binary": False}}`` (not modified). As
                upstream, the three top-level export arguments above override the same keys
                given here for ``glb`` (and ``ply``); ``conf_thresh_percentile`` and
                ``process_res_method`` override them for ``colmap``.
            compute_aux: also return ``aux["ray"]`` and ``aux["ray_conf"]``.
            taps: names of graph intermediates to return in ``aux`` (debugging/parity); a
                name this model's graph does not produce in this call raises ValueError.
            max_image_pixels: largest width x height of an input image (default
                100,000,000), checked from file headers and array shapes before anything is
                decoded or copied; at most 2**31 - 1.
            downscale_large_images: reduce larger images by the smallest integer factor
                that fits ``max_image_pixels`` (box filter) instead of raising ValueError.
            images: deprecated alias of ``image`` (DeprecationWarning).

        Returns:
            :class:`Prediction` (depth, conf, extrinsics, intrinsics, sky, processed_images,
            is_metric, aux), with ``original_sizes`` and ``image_paths`` recorded.

        Raises:
            ValueError: bad images (the message names the file or index), cameras or
                argument values (out of range, NaN, inf); an image over
                ``max_image_pixels``; more than 256 views; unknown export format (the
                message lists the valid ones); unknown tap names; the model was closed.
            TypeError: unknown export option names, arguments of the wrong type; no images;
                ``image`` and ``images`` both.
            OSError: the export directory cannot be created or written (the message
                names the path).
            FileNotFoundError: an image path does not exist.
            UnsupportedError (a NotImplementedError): a feature that is not ported
                (``infer_gs``, ``render_*``, the ``gs_ply`` and ``gs_video`` exports,
                ``*_crop`` methods); input poses on a model without camera encoder;
                ``use_ray_pose`` without aux head.
            NonFiniteOutputError: an output is NaN or inf (invalid weights or input).
            MemoryError: allocation failure.
            BackendError: compute failure.
        """
        image = take_image_alias(image, images)
        _check_unported(infer_gs=infer_gs, render_exts=render_exts, render_ixts=render_ixts,
                        render_hw=render_hw)
        feat_layers = self._check_feat_layers(export_feat_layers)
        images = image
        max_image_pixels, tap_names = check_inference_args(process_res, process_res_method, ref_view_strategy,
                                                           max_image_pixels, taps)
        feat_taps = tuple(f"vit.feat_layer.{i}" for i in feat_layers if f"vit.feat_layer.{i}" not in tap_names)
        plan = None
        if export_dir is not None:  # checked before the network runs
            plan = export_plan(export_format, export_kwargs, conf_thresh_percentile,
                               num_max_points, show_cameras, process_res_method, feat_vis_fps)
            if "feat_vis" in plan.formats and not feat_layers:
                raise ValueError("export_format 'feat_vis' needs export_feat_layers (the layers to show)")

        max_views = int(self._core.max_views)
        if count_images(images) > max_views:  # before anything is decoded
            raise ValueError(f"images: {count_images(images)} views given, at most {max_views} per call")
        views = load_images(images, max_image_pixels=max_image_pixels,
                            downscale_large_images=bool(downscale_large_images))
        # the cameras are checked by the core (shapes, values, and against this model's heads)
        result = self._model.infer(
            views, extrinsics=extrinsics, intrinsics=intrinsics, process_res=int(process_res),
            process_res_method=process_res_method, ref_view_strategy=ref_view_strategy,
            use_ray_pose=bool(use_ray_pose), compute_aux=bool(compute_aux or use_ray_pose),
            align_to_input_ext_scale=bool(align_to_input_ext_scale), taps=tap_names + feat_taps,
            max_image_pixels=max_image_pixels,
        )
        prediction = prediction_from_result(result, tap_names, feat_taps, feat_layers)
        prediction.original_sizes = [(int(v.shape[1]), int(v.shape[0])) for v in views]
        prediction.process_res, prediction.process_res_method = int(process_res), process_res_method
        paths = input_paths(images)
        prediction.image_paths = paths if len(paths) == len(views) else [None] * len(views)
        if plan is not None:
            plan.write(prediction, export_dir)
        return prediction


def _signature_defaults(fn: Any) -> dict:
    return {n: p.default for n, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


#: Defaults of :meth:`DepthAnything3.inference` and :meth:`DepthAnything3.from_file` by argument
#: name, for the CLI, the server and Ray (tests/test_defaults.py checks them against the C
#: core's *_default_params()).
INFERENCE_DEFAULTS = _signature_defaults(DepthAnything3.inference)
LOAD_DEFAULTS = _signature_defaults(DepthAnything3.from_file)
