// preprocess.cpp - official DA3 preprocessing: the resize plan of a batch, cv2.resize (resize_u8.cpp),
// normalization and the intrinsics of the processed images.
//
// ref: depth_anything_3/utils/io/input_processor.py.
#include "host/preprocess.h"
#include "host/no_fuse.h"
#include "common.h"  // set_last_error

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace da3 {
namespace {

// Python round() on a double: half to even.
int round_half_even(double v) { return (int)std::nearbyint(v); }

int nearest_multiple(int x, int p) {
    int down = (x / p) * p, up = down + p;
    return std::abs(up - x) <= std::abs(x - down) ? up : down;
}

bool resize_u8(const uint8_t *src, int sw, int sh, size_t sstride, int dw, int dh, bool cubic,
               image_u8 &dst) {
    return cubic ? resize_cubic(src, sw, sh, sstride, dw, dh, dst)
                 : resize_area(src, sw, sh, sstride, dw, dh, dst);
}

}  // namespace

da3_status plan_batch(const da3_image *images, int n, int process_res, da3_resize_method method,
                      std::vector<resize_plan> &plans, std::string &err,
                      int64_t max_image_pixels) {
    if (!images) {
        err = "images is NULL";
        return DA3_ERR_INVALID_ARGUMENT;
    }
    if (n <= 0) {
        err = "number of images must be positive, got " + std::to_string(n);
        return DA3_ERR_INVALID_ARGUMENT;
    }
    if (process_res < k_min_process_res || process_res > k_max_process_res) {
        err = "process_res must be in [" + std::to_string(k_min_process_res) + ", " +
              std::to_string(k_max_process_res) + "], got " + std::to_string(process_res);
        return DA3_ERR_INVALID_ARGUMENT;
    }
    if (method != DA3_RESIZE_UPPER_BOUND && method != DA3_RESIZE_LOWER_BOUND) {
        err = "unknown resize method " + std::to_string((int)method);
        return DA3_ERR_INVALID_ARGUMENT;
    }
    plans.assign((size_t)n, resize_plan{});
    for (int i = 0; i < n; i++) {
        const da3_image &im = images[i];
        const std::string tag = "image " + std::to_string(i) + ": ";
        if (!im.data) {
            err = tag + "data is NULL";
            return DA3_ERR_INVALID_ARGUMENT;
        }
        if (im.width <= 0 || im.height <= 0) {
            err = tag + "size must be positive, got " + std::to_string(im.width) + "x" +
                  std::to_string(im.height);
            return DA3_ERR_INVALID_ARGUMENT;
        }
        if (im.stride < (size_t)im.width * 3) {
            err = tag + "stride " + std::to_string(im.stride) + " < width*3 = " +
                  std::to_string((size_t)im.width * 3);
            return DA3_ERR_INVALID_ARGUMENT;
        }
        if ((int64_t)im.width * im.height > max_image_pixels) {
            err = tag + std::to_string(im.width) + "x" + std::to_string(im.height) +
                  " is over the limit of " + std::to_string(max_image_pixels) + " pixels";
            return DA3_ERR_INVALID_ARGUMENT;
        }
        resize_plan &p = plans[(size_t)i];
        p.orig_w = im.width;
        p.orig_h = im.height;
        // ref: InputProcessor._resize_longest_side / _resize_shortest_side
        const int side = method == DA3_RESIZE_UPPER_BOUND ? std::max(im.width, im.height)
                                                          : std::min(im.width, im.height);
        p.bound_w = im.width;
        p.bound_h = im.height;
        if (side != process_res) {
            const double scale = process_res / (double)side;
            const double fw = im.width * scale, fh = im.height * scale;
            if (fw * fh > (double)max_image_pixels * 4.0) {
                err = tag + "processed size is over the limit of " +
                      std::to_string(max_image_pixels) + " pixels";
                return DA3_ERR_INVALID_ARGUMENT;
            }
            p.bound_w = std::max(1, round_half_even(fw));
            p.bound_h = std::max(1, round_half_even(fh));
        }
        // ref: InputProcessor._make_divisible_by_resize
        p.patch_w = std::max(1, nearest_multiple(p.bound_w, k_patch_size));
        p.patch_h = std::max(1, nearest_multiple(p.bound_h, k_patch_size));
        if ((int64_t)p.patch_w * p.patch_h > max_image_pixels ||
            (int64_t)p.bound_w * p.bound_h > max_image_pixels) {
            err = tag + "processed size " + std::to_string(p.patch_w) + "x" +
                  std::to_string(p.patch_h) + " is over the limit of " +
                  std::to_string(max_image_pixels) + " pixels";
            return DA3_ERR_INVALID_ARGUMENT;
        }
    }
    // ref: InputProcessor._unify_batch_shapes: center-crop all to the smallest (H, W);
    // the image uses torchvision center_crop (int(round(d / 2.0))), the intrinsics d // 2.
    int min_w = plans[0].patch_w, min_h = plans[0].patch_h;
    for (const resize_plan &p : plans) {
        min_w = std::min(min_w, p.patch_w);
        min_h = std::min(min_h, p.patch_h);
    }
    bool mixed = false;
    for (const resize_plan &p : plans)
        mixed = mixed || p.patch_w != plans[0].patch_w || p.patch_h != plans[0].patch_h;
    for (resize_plan &p : plans) {
        p.out_w = p.patch_w;
        p.out_h = p.patch_h;
        if (!mixed) continue;
        p.out_w = min_w;
        p.out_h = min_h;
        p.crop_x = round_half_even((p.patch_w - min_w) / 2.0);
        p.crop_y = round_half_even((p.patch_h - min_h) / 2.0);
        p.ixt_crop_x = (p.patch_w - min_w) / 2;
        p.ixt_crop_y = (p.patch_h - min_h) / 2;
    }
    return DA3_OK;
}

// Resizes the current image (cur, stride, cw x ch) to tw x th into buf and points cur at it;
// nothing when the size is already right. false when resize_u8 fails.
static bool resize_step(const uint8_t *&cur, size_t &stride, int &cw, int &ch, int tw, int th, image_u8 &buf) {
    if (tw == cw && th == ch) return true;
    const bool up = tw > cw || th > ch;
    if (!resize_u8(cur, cw, ch, stride, tw, th, up, buf)) return false;
    cur = buf.data.data();
    stride = (size_t)buf.width * 3;
    cw = buf.width;
    ch = buf.height;
    return true;
}

da3_status preprocess_batch(const da3_image *images, int n, int process_res,
                            da3_resize_method method, std::vector<image_u8> &out,
                            std::string &err, std::vector<resize_plan> *plans_out,
                            int64_t max_image_pixels) {
    std::vector<resize_plan> plans;
    da3_status st = plan_batch(images, n, process_res, method, plans, err, max_image_pixels);
    if (st != DA3_OK) return st;
    try {
        out.assign((size_t)n, image_u8{});
        image_u8 bound, patched;
        for (int i = 0; i < n; i++) {
            const da3_image &im = images[i];
            const resize_plan &p = plans[(size_t)i];
            const uint8_t *cur = im.data;
            size_t cur_stride = im.stride;
            int cw = im.width, ch = im.height;
            // boundary resize (one uniform scale, so both axes grow or both shrink), then the
            // resize to multiples of the patch size
            if (!resize_step(cur, cur_stride, cw, ch, p.bound_w, p.bound_h, bound) ||
                !resize_step(cur, cur_stride, cw, ch, p.patch_w, p.patch_h, patched)) {
                err = "internal error: image resize failed";
                return DA3_ERR_INTERNAL;
            }
            image_u8 &o = out[(size_t)i];
            o.width = p.out_w;
            o.height = p.out_h;
            o.data.resize((size_t)p.out_w * p.out_h * 3);
            for (int y = 0; y < p.out_h; y++)
                std::memcpy(o.data.data() + (size_t)y * p.out_w * 3,
                            cur + (size_t)(y + p.crop_y) * cur_stride + (size_t)p.crop_x * 3,
                            (size_t)p.out_w * 3);
        }
    } catch (const std::bad_alloc &) {
        out.clear();
        err = "out of memory while preprocessing images";
        return DA3_ERR_OUT_OF_MEMORY;
    }
    if (plans_out) plans_out->swap(plans);
    return DA3_OK;
}

namespace {
// Per channel and value: torchvision ToTensor().div(255) then Normalize (sub_, div_), float32.
void normalize_lut(const float mean[3], const float std[3], float lut[3][256]) {
    for (int c = 0; c < 3; c++)
        for (int u = 0; u < 256; u++) lut[c][u] = ((float)u / 255.f - mean[c]) / std[c];
}
}  // namespace

void normalize_chw(const image_u8 &img, const float mean[3], const float std[3], float *out) {
    float lut[3][256];
    normalize_lut(mean, std, lut);
    const size_t plane = (size_t)img.width * img.height;
    const uint8_t *s = img.data.data();
    for (size_t i = 0; i < plane; i++) {
        out[i] = lut[0][s[i * 3]];
        out[plane + i] = lut[1][s[i * 3 + 1]];
        out[2 * plane + i] = lut[2][s[i * 3 + 2]];
    }
}

void processed_image_u8(const image_u8 &img, const float mean[3], const float std[3],
                        uint8_t *out) {
    float lut[3][256];
    normalize_lut(mean, std, lut);
    uint8_t den[3][256];
    // ref: api.py _add_processed_images: float32 input * float64 std + float64 mean,
    // clip [0, 1], * 255, astype(uint8) (truncation). Upstream uses the float64 ImageNet
    // literals there; widening the float32 values instead changes ~1/3 of the pixels.
    static const double imagenet_mean[3] = {0.485, 0.456, 0.406};
    static const double imagenet_std[3] = {0.229, 0.224, 0.225};
    for (int c = 0; c < 3; c++) {
        const double m = mean[c] == (float)imagenet_mean[c] ? imagenet_mean[c] : (double)mean[c];
        const double s = std[c] == (float)imagenet_std[c] ? imagenet_std[c] : (double)std[c];
        for (int u = 0; u < 256; u++) {
            double v = mul_d((double)lut[c][u], s) + m;
            v = v < 0. ? 0. : (v > 1. ? 1. : v);
            den[c][u] = (uint8_t)(v * 255.);
        }
    }
    const size_t n = (size_t)img.width * img.height;
    const uint8_t *s = img.data.data();
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) out[i * 3 + c] = den[c][s[i * 3 + c]];
}

void adjust_intrinsics(const resize_plan &p, float K[9]) {
    // ref: InputProcessor._resize_ixt (K[:1] *= w / float(orig_w); K[1:2] *= h / float(orig_h))
    auto scale_rows = [K](int ow, int oh, int w, int h) {
        const float sx = (float)(w / (double)ow), sy = (float)(h / (double)oh);
        for (int j = 0; j < 3; j++) {
            K[j] *= sx;
            K[3 + j] *= sy;
        }
    };
    scale_rows(p.orig_w, p.orig_h, p.bound_w, p.bound_h);
    scale_rows(p.bound_w, p.bound_h, p.patch_w, p.patch_h);
    K[2] -= (float)p.ixt_crop_x;
    K[5] -= (float)p.ixt_crop_y;
}

}  // namespace da3

// ---- C API ---------------------------------------------------------------------------

extern "C" da3_status da3_preprocess(const da3_image *images, int n_views, int process_res,
                                     da3_resize_method method, const float mean[3],
                                     const float std[3], int *out_w, int *out_h,
                                     uint8_t *out_rgb, float *out_norm) {
    std::string err;
    auto fail = [&](da3_status st, const std::string &msg) {
        da3::set_last_error("da3_preprocess: " + msg);
        return st;
    };
    if (!out_w || !out_h) return fail(DA3_ERR_INVALID_ARGUMENT, "out_w/out_h is NULL");
    if ((out_rgb || out_norm) && (!mean || !std))
        return fail(DA3_ERR_INVALID_ARGUMENT, "mean/std is NULL");
    if (mean && std)
        for (int c = 0; c < 3; c++)
            if (!std::isfinite(mean[c]) || !std::isfinite(std[c]) || std[c] == 0.f)
                return fail(DA3_ERR_INVALID_ARGUMENT,
                            "mean must be finite and std finite and non-zero");
    try {
        std::vector<da3::resize_plan> plans;
        if (!out_rgb && !out_norm) {  // size query only
            da3_status st = da3::plan_batch(images, n_views, process_res, method, plans, err);
            if (st != DA3_OK) return fail(st, err);
            *out_w = plans[0].out_w;
            *out_h = plans[0].out_h;
            return DA3_OK;
        }
        std::vector<da3::image_u8> imgs;
        da3_status st =
            da3::preprocess_batch(images, n_views, process_res, method, imgs, err, &plans);
        if (st != DA3_OK) return fail(st, err);
        const int w = imgs[0].width, h = imgs[0].height;
        const size_t plane = (size_t)w * h;
        for (size_t i = 0; i < imgs.size(); i++) {
            if (out_rgb) da3::processed_image_u8(imgs[i], mean, std, out_rgb + i * plane * 3);
            if (out_norm) da3::normalize_chw(imgs[i], mean, std, out_norm + i * plane * 3);
        }
        *out_w = w;
        *out_h = h;
        return DA3_OK;
    } catch (const std::bad_alloc &) {
        return fail(DA3_ERR_OUT_OF_MEMORY, "out of memory");
    } catch (const std::exception &e) {
        return fail(DA3_ERR_INTERNAL, e.what());
    }
}
