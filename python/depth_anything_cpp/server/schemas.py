"""Request and response bodies (pydantic; they make the OpenAPI document).

``DepthRequest`` / ``DepthResponse`` follow LocalAI's ``POST /v1/depth`` field for field
(see ../shared/docs/serving.md); ``BatchRequest`` / ``BatchResponse`` the serverless depth
workers' shape. Extensions are marked "(ours)".
"""

from __future__ import annotations

from typing import Any, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..api import PROCESS_RES_RANGE

#: colormaps of the batch endpoint's ``colorized`` task (the serverless workers' six)
COLORMAPS = ("viridis", "magma", "inferno", "plasma", "turbo", "gray")
TASKS = ("depth", "colorized", "normals", "disparity", "point_cloud")
OUTPUT_FORMATS = ("png", "webp", "jpg")
ARRAY_ENCODINGS = ("json", "base64", "npz")
_MIN_RES, _MAX_RES = PROCESS_RES_RANGE


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class DepthRequest(_Strict):
    """LocalAI ``DepthRequest`` plus ``model`` (REST)."""

    model: Optional[str] = Field(None, max_length=256, description="model name (GGUF stem); default: the only/default model")
    image: Optional[str] = Field(None, description="base64 or data URI; an http(s) URL or a server path when enabled")
    src: Optional[str] = Field(None, description="LocalAI's RPC name of `image` (same rules)")
    dst: Optional[str] = Field(None, max_length=4096, description="export directory, under the server's export root")
    include_depth: Optional[bool] = None
    include_confidence: Optional[bool] = None
    include_pose: Optional[bool] = None
    include_sky: Optional[bool] = None
    include_points: Optional[bool] = None
    points_conf_thresh: Optional[float] = Field(
        None, ge=0.0, le=1e6, allow_inf_nan=False,
        description="absolute confidence threshold of the points (default: the official filter, "
                    "min(max(1.05, p40), p90))")
    exports: List[Literal["glb", "colmap"]] = Field(default_factory=list, max_length=2)
    process_res: Optional[int] = Field(None, ge=_MIN_RES, le=_MAX_RES, description="(ours) processing resolution")
    array_encoding: Literal[ARRAY_ENCODINGS] = Field(  # type: ignore[valid-type]
        "json", description="(ours) json: float lists; base64: little-endian float32 (point_colors "
                            "uint8); npz: every array in the base64 NPZ field `npz`")

    @model_validator(mode="after")
    def _one_image(self) -> "DepthRequest":
        if (self.image is None) == (self.src is None):
            raise ValueError("give exactly one of 'image' and 'src'")
        return self


FloatArray = Union[List[Optional[float]], str, None]


class DepthResponse(BaseModel):
    """LocalAI ``DepthResponse``. Arrays are row-major at the depth map's size
    (``width`` x ``height``, the processed resolution)."""

    width: int
    height: int
    depth: FloatArray = None
    confidence: FloatArray = None
    sky: FloatArray = None
    extrinsics: FloatArray = None
    intrinsics: FloatArray = None
    num_points: int = 0
    points: FloatArray = None
    point_colors: Optional[str] = None
    export_paths: List[str] = Field(default_factory=list)
    is_metric: bool
    model: str = Field(description="(ours)")
    array_encoding: str = Field(description="(ours)")
    npz: Optional[str] = Field(None, description="(ours) base64 NPZ with array_encoding=npz")
    elapsed_sec: float = Field(description="(ours)")


class BatchImage(_Strict):
    type: Literal["b64", "url", "path"]
    data: str = Field(min_length=1)


class BatchInput(_Strict):
    """The serverless workers' ``input`` object."""

    model: Optional[str] = Field(None, max_length=256)
    images: Optional[List[BatchImage]] = None
    image_url: Optional[str] = None
    image_urls: Optional[List[str]] = None
    image_b64: Optional[str] = None
    tasks: List[Literal[TASKS]] = Field(default_factory=lambda: ["depth"], min_length=1, max_length=5)  # type: ignore[valid-type]
    colormap: Literal[COLORMAPS] = "viridis"  # type: ignore[valid-type]
    normalize: bool = True
    output_format: Literal[OUTPUT_FORMATS] = "png"  # type: ignore[valid-type]
    quality: int = Field(95, ge=1, le=100)
    max_size: Optional[int] = Field(None, ge=_MIN_RES, le=_MAX_RES, description="longest edge for inference (process_res)")
    invert: bool = False
    include_raw: bool = Field(False, description="float32 NPZ (depth, conf, extrinsics, intrinsics) at the inference size")
    point_cloud_grid: int = Field(512, ge=1, le=4096, description="point_cloud keeps at most grid^2 points")
    multiview: bool = Field(False, description="(ours) all images are the views of one scene")

    def sources(self) -> list[tuple[str, str]]:
        """[(kind, data)] of every image given, in order."""
        out: list[tuple[str, str]] = []
        if self.image_url is not None:
            out.append(("url", self.image_url))
        out += [("url", u) for u in (self.image_urls or [])]
        if self.image_b64 is not None:
            out.append(("b64", self.image_b64))
        out += [(i.type, i.data) for i in (self.images or [])]
        return out


class BatchRequest(BatchInput):
    """``{"input": {...}}`` as the serverless workers take it, or the same fields at the top level."""

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, dict) and set(data) == {"input"} and isinstance(data["input"], dict):
            return data["input"]
        return data


class BatchResult(BaseModel):
    index: int
    input: dict
    model: Optional[str] = None
    metric: Optional[bool] = None
    width: Optional[int] = None
    height: Optional[int] = None
    inference_size: Optional[List[int]] = None
    depth_min: Optional[float] = None
    depth_max: Optional[float] = None
    depth_mean: Optional[float] = None
    tasks: List[str] = Field(default_factory=list)
    depth_png_b64: Optional[str] = None
    depth_png_mime: Optional[str] = None
    colorized_b64: Optional[str] = None
    colorized_mime: Optional[str] = None
    colormap: Optional[str] = None
    normals_b64: Optional[str] = None
    disparity_b64: Optional[str] = None
    point_cloud_b64: Optional[str] = None
    depth_npz_b64: Optional[str] = None
    extrinsics: Optional[List[float]] = None
    intrinsics: Optional[List[float]] = None
    elapsed_sec: float
    error: Optional[dict] = None


class BatchResponse(BaseModel):
    results: List[BatchResult]
    scene: Optional[dict] = None
    model: str
    tasks: List[str]
    colormap: str
    output_format: str
    max_size: int
    invert: bool
    multiview: bool
    device: str
    count: int
    elapsed_sec: float
