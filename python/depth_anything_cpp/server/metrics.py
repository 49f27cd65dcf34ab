"""Prometheus metrics of one app (its own registry, so several apps can live in a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """``da3_requests_total{endpoint,status}``, ``da3_request_errors_total{endpoint,status}``
    (status >= 400), ``da3_request_seconds{endpoint}``, ``da3_queue_depth{model}`` (jobs
    waiting), ``da3_model_loads_total{model,result}``, ``da3_model_load_seconds{model}``,
    ``da3_models_loaded``, ``da3_inference_seconds{model}``, ``da3_images_total{model}``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("da3_requests", "HTTP requests", ["endpoint", "status"], registry=r)
        self.errors = Counter("da3_request_errors", "HTTP requests answered with status >= 400",
                              ["endpoint", "status"], registry=r)
        self.latency = Histogram("da3_request_seconds", "HTTP request latency", ["endpoint"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("da3_queue_depth", "Requests waiting for a model", ["model"], registry=r)
        self.model_loads = Counter("da3_model_loads", "Model loads", ["model", "result"], registry=r)
        self.model_load_seconds = Histogram("da3_model_load_seconds", "Model load time", ["model"],
                                            buckets=_LATENCY_BUCKETS, registry=r)
        self.models_loaded = Gauge("da3_models_loaded", "Models in the cache", registry=r)
        self.inference = Histogram("da3_inference_seconds", "Inference time per call", ["model"],
                                   buckets=_LATENCY_BUCKETS, registry=r)
        self.images = Counter("da3_images", "Images processed", ["model"], registry=r)
