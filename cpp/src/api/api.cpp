// C API boundary: argument checks, exception -> status translation, ownership.
#include "depth_anything.h"
#include "models/model.h"
#include "host/cpu_cores.h"
#include "host/preprocess.h"
#include "api/api_args.h"

#include "ggml-cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <cstring>
#include <new>
#include <thread>
#include <chrono>
#if defined(DA3_GGML_OPENMP) && !defined(_WIN32)
#include <omp.h>
#endif
#if !defined(_WIN32)
#include <pthread.h>
#endif
#ifdef _WIN32
#include <process.h>
#define getpid _getpid
#else
#include <unistd.h>
#endif

namespace da3 {
static thread_local std::string g_last_error;
static thread_local int g_last_errno = 0;
void set_last_error(const std::string &msg, int os_errno) {
    g_last_error = msg;
    g_last_errno = os_errno;
}
}  // namespace da3

using da3::fail;

#ifndef DA3_VARIANT_NAME
#define DA3_VARIANT_NAME "unknown"
#endif

// ggml logs INFO lines (e.g. "ggml_vulkan: No devices found.") on every probe: keep warnings
// and errors, and everything when DA3CPP_VERBOSE is set.
static void log_filter(ggml_log_level level, const char *text, void *) {
    static const bool verbose = std::getenv("DA3CPP_VERBOSE") != nullptr;
    if (verbose || level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

// A failed GGML_ASSERT / GGML_ABORT (a bug: no input should reach one) still terminates the
// process, as ggml then calls abort(); without this callback ggml would first attach gdb and
// print its backtrace to stdout. One message on stderr instead.
static void abort_message(const char *msg) {
    std::fprintf(stderr, "depth-anything-cpp: fatal error inside ggml (please report): %s\n", msg);
    std::fflush(stderr);
}

// Held across fork() (the atfork handlers below) and by context_lock for the moment it takes or
// gives a context's lock and records its owner: a fork never falls between the two. A plain
// mutex: the child's thread (another thread id) may unlock it, which a rwlock would not allow.
static std::mutex g_fork_guard;

#if !defined(_WIN32)
static void before_fork() {
    g_fork_guard.lock();
#if defined(DA3_GGML_OPENMP)
    // libgomp keeps a pool of worker threads per thread that ran a parallel region; a child
    // forked after an inference inherits that pool without its threads and waits for them
    // forever in its first parallel region. Release the forking thread's pool before fork
    // (OpenMP 5.0); the next parallel region, in parent or child, makes a new one.
    omp_pause_resource_all(omp_pause_hard);
#endif
}
static void after_fork() { g_fork_guard.unlock(); }
#endif

static void ensure_logging() {
    static std::once_flag once;
    std::call_once(once, [] {
        ggml_log_set(log_filter, nullptr);
        ggml_set_abort_callback(abort_message);
#if !defined(_WIN32)
        pthread_atfork(before_fork, after_fork, after_fork);
#endif
    });
}

extern "C" {

const char *da3_status_string(da3_status s) {
    switch (s) {
        case DA3_OK: return "ok";
        case DA3_ERR_INVALID_ARGUMENT: return "invalid argument";
        case DA3_ERR_IO: return "i/o error";
        case DA3_ERR_FORMAT: return "invalid model file";
        case DA3_ERR_MISSING_TENSOR: return "missing or misshaped tensor";
        case DA3_ERR_UNSUPPORTED: return "unsupported";
        case DA3_ERR_OUT_OF_MEMORY: return "out of memory";
        case DA3_ERR_BACKEND: return "backend error";
        case DA3_ERR_INTERNAL: return "internal error";
        case DA3_ERR_NON_FINITE: return "non-finite output";
    }
    return "unknown status";
}

const char *da3_last_error(void) { return da3::g_last_error.c_str(); }

int da3_last_errno(void) { return da3::g_last_errno; }

const char *da3_ggml_version(void) { return ggml_version(); }

const char *da3_build_variant(void) { return DA3_VARIANT_NAME; }

static bool dev_is_gpu(ggml_backend_dev_t d) {
    auto t = ggml_backend_dev_type(d);
    if (t != GGML_BACKEND_DEVICE_TYPE_GPU && t != GGML_BACKEND_DEVICE_TYPE_IGPU) return false;
    std::string desc = ggml_backend_dev_description(d);
    // software rasterizers (lavapipe/llvmpipe) run on the CPU
    return desc.find("llvmpipe") == std::string::npos && desc.find("lavapipe") == std::string::npos;
}

int da3_device_count(void) {
    ensure_logging();
    return (int)ggml_backend_dev_count();
}

da3_status da3_device_get(int i, da3_device_info *info) {
    return da3::guarded([&] {
        if (!info) fail(DA3_ERR_INVALID_ARGUMENT, "info is NULL");
        ensure_logging();
        if (i < 0 || i >= (int)ggml_backend_dev_count()) fail(DA3_ERR_INVALID_ARGUMENT, "device index out of range");
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        std::memset(info, 0, sizeof(*info));
        std::strncpy(info->name, ggml_backend_dev_name(d), sizeof(info->name) - 1);
        std::strncpy(info->description, ggml_backend_dev_description(d), sizeof(info->description) - 1);
        info->is_gpu = dev_is_gpu(d) ? 1 : 0;
        ggml_backend_dev_memory(d, &info->memory_free, &info->memory_total);
    });
}

da3_context_params da3_context_default_params(void) {
    da3_context_params p;
    p.n_threads = 0;
    p.backend = DA3_BACKEND_CPU;
    p.device = -1;
    p.use_mmap = 0;
    p.precision = DA3_PRECISION_AUTO;
    return p;
}

}  // extern "C"

namespace da3 {
void open_backends(const da3_context_params &params, ggml_backend_t &cpu, ggml_backend_t &backend) {
    cpu = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
    if (!cpu) fail(DA3_ERR_BACKEND, "cannot initialize the CPU backend");
    ggml_backend_cpu_set_n_threads(cpu, params.n_threads);
    backend = cpu;
    if (params.backend == DA3_BACKEND_CPU) return;
    ggml_backend_dev_t dev = nullptr;
    const int n_dev = (int)ggml_backend_dev_count();
    if (params.device >= 0) {
        if (params.device >= n_dev) fail(DA3_ERR_INVALID_ARGUMENT, "device index out of range");
        dev = ggml_backend_dev_get(params.device);
    } else {
        for (int i = 0; i < n_dev && !dev; ++i) {
            ggml_backend_dev_t d = ggml_backend_dev_get(i);
            auto t = ggml_backend_dev_type(d);
            if (t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU) dev = d;
        }
    }
    if (dev && ggml_backend_dev_type(dev) != GGML_BACKEND_DEVICE_TYPE_CPU) {
        backend = ggml_backend_dev_init(dev, nullptr);
        if (!backend) fail(DA3_ERR_BACKEND, std::string("cannot initialize device ") + ggml_backend_dev_name(dev));
    } else if (params.backend == DA3_BACKEND_GPU) {
        fail(DA3_ERR_BACKEND, "no GPU device is available in this build (variant " DA3_VARIANT_NAME ")");
    }
}

da3_context_params resolved_params(const da3_context_params *params) {
    da3_context_params p = params ? *params : da3_context_default_params();
    if (p.n_threads > GGML_MAX_N_THREADS) {
        fail(DA3_ERR_INVALID_ARGUMENT, "n_threads " + std::to_string(p.n_threads) + " is over ggml's limit of " +
                                           std::to_string(GGML_MAX_N_THREADS));
    }
    if (p.n_threads <= 0) p.n_threads = std::min(da3::physical_cores(), GGML_MAX_N_THREADS);
    if (p.precision != DA3_PRECISION_AUTO && p.precision != DA3_PRECISION_F32 && p.precision != DA3_PRECISION_BF16) {
        fail(DA3_ERR_INVALID_ARGUMENT, "params.precision must be DA3_PRECISION_AUTO, _F32 or _BF16, got " +
                                           std::to_string(p.precision));
    }
    return p;
}
}  // namespace da3

extern "C" {

// da3_load (metric_path NULL) and da3_load_pair.
static da3_status load_context(const char *path, const char *metric_path, const da3_context_params *params,
                               da3_context **out) {
    if (out) *out = nullptr;
    return da3::guarded([&] {
        ensure_logging();
        auto ctx = std::make_unique<da3_context>();
        ctx->params = da3::resolved_params(params);
        const int n_threads = ctx->params.n_threads;

        da3::open_backends(ctx->params, ctx->cpu, ctx->backend);
        // A shape pass of the loaders on the opened files first: every metadata, name and shape
        // check before any weight data is read, and only the tensors it looks up are then
        // allocated and read (weights.h).
        if (metric_path) {
            // kinds and order checked before any weight data is read
            ctx->wm.open(path);
            ctx->m_wm.open(metric_path);
            da3::check_model_pair(ctx->wm, ctx->m_wm);
            {
                da3::model shapes;
                da3::load_model_pair(ctx->wm, ctx->m_wm, shapes);
            }
            ctx->wm.upload(ctx->backend, n_threads);
            ctx->m_wm.upload(ctx->backend, n_threads);
            da3::load_model_pair(ctx->wm, ctx->m_wm, ctx->model);
        } else {
            ctx->wm.open(path);
            {
                da3::model shapes;
                da3::load_model(ctx->wm, shapes);
            }
            ctx->wm.upload(ctx->backend, n_threads);
            da3::load_model(ctx->wm, ctx->model);
        }
        // AUTO (issue #23): exact f32 for f32 files, the bf16 engines for f16/bf16 files,
        // int8 engines for q8_0/q4_k (packed as before, whatever the precision)
        const std::string wt = ctx->wm.weight_type();
        const bool bf16 = ctx->params.precision == DA3_PRECISION_BF16 ||
                          (ctx->params.precision == DA3_PRECISION_AUTO && (wt == "f16" || wt == "bf16"));
        if (ctx->backend == ctx->cpu) da3::prepare_model_for_cpu(ctx->model, n_threads, bf16);

        da3::reserve_graph(ctx.get(), 1);
        *out = ctx.release();
    });
}

da3_status da3_load(const char *path, const da3_context_params *params, da3_context **out) {
    if (!path || !out) {
        if (out) *out = nullptr;
        da3::set_last_error("path and out must not be NULL");
        return DA3_ERR_INVALID_ARGUMENT;
    }
    return load_context(path, nullptr, params, out);
}

da3_status da3_load_pair(const char *anyview_path, const char *metric_path, const da3_context_params *params,
                         da3_context **out) {
    if (!anyview_path || !metric_path || !out) {
        if (out) *out = nullptr;
        da3::set_last_error("anyview_path, metric_path and out must not be NULL");
        return DA3_ERR_INVALID_ARGUMENT;
    }
    return load_context(anyview_path, metric_path, params, out);
}

void da3_free(da3_context *ctx) { delete ctx; }

da3_status da3_get_model_info(const da3_context *ctx, da3_model_info *info) {
    return da3::guarded([&] {
        if (!ctx || !info) fail(DA3_ERR_INVALID_ARGUMENT, "ctx and info must not be NULL");
        const da3::model &m = ctx->model;
        std::memset(info, 0, sizeof(*info));
        std::strncpy(info->preset, m.preset.c_str(), sizeof(info->preset) - 1);
        std::strncpy(info->checkpoint, m.checkpoint.c_str(), sizeof(info->checkpoint) - 1);
        info->embed_dim = m.vit.hp.embed_dim;
        info->depth = m.vit.hp.depth;
        info->num_heads = m.vit.hp.num_heads;
        info->patch_size = m.vit.hp.patch_size;
        for (int k = 0; k < 4; ++k) info->out_layers[k] = m.vit.hp.out_layers[k];
        info->alt_start = m.vit.hp.alt_start;
        info->rope_start = m.vit.hp.rope_start;
        info->qknorm_start = m.vit.hp.qknorm_start;
        info->head_features = m.head.hp.features;
        info->has_camera_decoder = m.has_cam_dec;
        info->has_camera_encoder = m.has_cam_enc;
        info->has_aux_head = m.head.hp.has_aux;
        info->has_sky = m.head.hp.has_sky;
        info->is_metric = m.metric_scaling || m.nested;
        info->is_nested = m.nested;
        std::string wt = ctx->wm.weight_type();
        for (char &c : wt) c = (char)std::tolower((unsigned char)c);
        std::strncpy(info->weight_type, wt.c_str(), sizeof(info->weight_type) - 1);
        info->image_mean_std_from_file = 1;
        for (int c = 0; c < 3; ++c) info->image_mean[c] = m.mean[c], info->image_std[c] = m.std[c];
        info->weights_bytes = ctx->wm.weights_bytes() + ctx->m_wm.weights_bytes();
        info->weights_read_bytes = ctx->wm.weights_read_bytes() + ctx->m_wm.weights_read_bytes();
        info->n_threads = ctx->params.n_threads;
        std::strncpy(info->backend, ggml_backend_name(ctx->backend), sizeof(info->backend) - 1);
        std::strncpy(info->linear_engine, m.linear_engine.c_str(), sizeof(info->linear_engine) - 1);
    });
}

da3_infer_params da3_infer_default_params(void) {
    da3_infer_params p;
    p.process_res = 504;
    p.resize_method = DA3_RESIZE_UPPER_BOUND;
    p.ref_view = DA3_REF_SADDLE_BALANCED;
    p.use_ray_pose = 0;
    p.compute_aux = 0;
    p.align_to_input_ext_scale = 1;
    p.max_image_pixels = (int)da3::k_default_max_image_pixels;
    p.taps = nullptr;
    p.n_taps = 0;
    p.profile = 0;
    return p;
}

// Holds ctx->mu for one inference. A child forked while a thread of the parent ran an
// inference on ctx inherits mu locked by a thread it does not have: refuse instead of waiting
// forever (busy_pid is then the parent's pid). Taking mu and recording busy_pid happen under
// g_fork_guard, so no fork falls between them; a busy context is waited for by polling, as a
// blocked lock() could not be refused.
struct context_lock {
    da3_context *ctx;
    std::unique_lock<std::mutex> lock;
    explicit context_lock(da3_context *c) : ctx(c), lock(c->mu, std::defer_lock) {
        const long self = (long)getpid();
        for (;;) {
            {
                std::lock_guard<std::mutex> no_fork(g_fork_guard);
                if (lock.try_lock()) {
                    ctx->busy_pid = self;
                    return;
                }
                const long busy = ctx->busy_pid.load();
                if (busy != 0 && busy != self) {
                    fail(DA3_ERR_INVALID_ARGUMENT, "this model was running an inference in another thread when this "
                                                   "process was forked, and its state is lost here: load the model "
                                                   "again in this process");
                }
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
    ~context_lock() {
        std::lock_guard<std::mutex> no_fork(g_fork_guard);
        ctx->busy_pid = 0;
        lock.unlock();
    }
};

da3_status da3_infer_tensor(da3_context *ctx, const float *input, int n_views, int height, int width, const float *extrinsics,
                            int ext_rows, const float *intrinsics, const da3_infer_params *params, da3_result **out) {
    if (out) *out = nullptr;
    return da3::guarded([&] {
        if (!ctx || !input || !out) fail(DA3_ERR_INVALID_ARGUMENT, "ctx, input and out must not be NULL");
        da3::check_view_count(n_views);
        da3::check_poses(ctx, extrinsics, ext_rows, intrinsics, n_views);
        da3_infer_params p = params ? *params : da3_infer_default_params();
        da3::check_infer_params(p);
        context_lock lock(ctx);
        *out = da3::run_network(ctx, input, n_views, height, width, extrinsics, ext_rows, intrinsics, p).release();
    });
}

da3_status da3_infer(da3_context *ctx, const da3_image *images, int n_views, const float *extrinsics, int ext_rows,
                     const float *intrinsics, const da3_infer_params *params, da3_result **out) {
    if (out) *out = nullptr;
    return da3::guarded([&] {
        if (!ctx || !images || !out) fail(DA3_ERR_INVALID_ARGUMENT, "ctx, images and out must not be NULL");
        da3::check_view_count(n_views);
        da3::check_poses(ctx, extrinsics, ext_rows, intrinsics, n_views);
        da3_infer_params p = params ? *params : da3_infer_default_params();
        da3::check_infer_params(p);
        for (int i = 0; i < n_views; ++i) {
            if ((int64_t)images[i].width * images[i].height > (int64_t)p.max_image_pixels) {
                fail(DA3_ERR_INVALID_ARGUMENT, "image " + std::to_string(i) + " is " + std::to_string(images[i].width) + "x" +
                                                   std::to_string(images[i].height) + ", over the limit of " +
                                                   std::to_string(p.max_image_pixels) + " pixels");
            }
        }
        std::vector<da3::image_u8> proc;
        std::vector<da3::resize_plan> plans;
        std::string err;
        da3_status st = da3::preprocess_batch(images, n_views, p.process_res, p.resize_method, proc, err, &plans,
                                              p.max_image_pixels);
        if (st != DA3_OK) fail(st, err);
        const int w = proc[0].width, h = proc[0].height;
        if (w < 14 || h < 14) {
            fail(DA3_ERR_INVALID_ARGUMENT, "image too thin: at process_res=" + std::to_string(p.process_res) + " it becomes " +
                                               std::to_string(w) + "x" + std::to_string(h) +
                                               " pixels, and each side must reach the 14-pixel patch size");
        }
        std::vector<float> input((size_t)n_views * 3 * h * w);
        for (int i = 0; i < n_views; ++i) da3::normalize_chw(proc[i], ctx->model.mean, ctx->model.std, input.data() + (size_t)i * 3 * h * w);
        std::vector<float> intr_proc;
        if (intrinsics) {
            // intrinsics given at the original size -> processed size
            intr_proc.assign(intrinsics, intrinsics + (size_t)n_views * 9);
            for (int i = 0; i < n_views; ++i) da3::adjust_intrinsics(plans[i], intr_proc.data() + (size_t)i * 9);
        }
        context_lock lock(ctx);
        auto res = da3::run_network(ctx, input.data(), n_views, h, w, extrinsics, ext_rows,
                                    intrinsics ? intr_proc.data() : nullptr, p);
        res->images.resize((size_t)n_views * h * w * 3);
        for (int i = 0; i < n_views; ++i) {
            da3::processed_image_u8(proc[i], ctx->model.mean, ctx->model.std, res->images.data() + (size_t)i * h * w * 3);
        }
        *out = res.release();
    });
}

void da3_result_free(da3_result *res) { delete res; }

void da3_result_shape(const da3_result *res, int *n_views, int *height, int *width) {
    if (n_views) *n_views = res ? res->n_views : 0;
    if (height) *height = res ? res->height : 0;
    if (width) *width = res ? res->width : 0;
}

const float *da3_result_get(const da3_result *res, const char *name, int64_t shape[4], int *n_dims) {
    if (!res || !name) return nullptr;
    const da3::host_tensor *t = res->find(name);
    if (!t) return nullptr;
    if (n_dims) *n_dims = (int)t->shape.size();
    if (shape)
        for (size_t i = 0; i < 4; ++i) shape[i] = i < t->shape.size() ? t->shape[i] : 1;
    return t->data.data();
}

const uint8_t *da3_result_images(const da3_result *res) { return res && !res->images.empty() ? res->images.data() : nullptr; }

int da3_result_is_metric(const da3_result *res) { return res ? res->is_metric : 0; }

int da3_result_count(const da3_result *res) { return res ? (int)res->outputs.size() : 0; }

const char *da3_result_name(const da3_result *res, int i) {
    if (!res || i < 0 || i >= (int)res->outputs.size()) return nullptr;
    return res->outputs[i].first.c_str();
}

}  // extern "C"
