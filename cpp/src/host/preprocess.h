// preprocess.h - image preprocessing identical to the official DA3 InputProcessor.
//
// ref: depth_anything_3/utils/io/input_processor.py (InputProcessor), api.py
// (_add_processed_images). Per image: boundary resize (upper_bound_resize: longest side
// -> process_res, lower_bound_resize: shortest side -> process_res; new size
// max(1, round_half_even(side * scale))), cv2.INTER_AREA when shrinking and
// cv2.INTER_CUBIC when enlarging; then each side to the nearest multiple of 14 (ties go
// up) with a second cv2.resize (INTER_CUBIC if either side grows, else INTER_AREA).
// Batches of mixed processed sizes are center-cropped to the smallest height and width.
//
// The resizers reproduce OpenCV's own uint8 code paths bit for bit (modules/imgproc
// resize.cpp: resizeAreaFast_, resizeArea_, resizeGeneric_ with HResizeCubic and
// VResizeCubic incl. its 128-bit SIMD float path). Note: x86 opencv-python wheels built
// with Intel IPP route uint8 INTER_CUBIC to IPP (cv2.ipp.useIPP() == True), whose
// results differ from OpenCV's own code by +-1 on a few percent of pixels; we match
// OpenCV's own implementation (cv2 with cv2.ipp.setUseIPP(False), and every non-IPP
// build such as ARM wheels). INTER_AREA is never routed to IPP and matches exactly.
#ifndef DA3_PREPROCESS_H
#define DA3_PREPROCESS_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "depth_anything.h"

namespace da3 {

constexpr int k_patch_size = 14;
constexpr int k_min_process_res = DA3_MIN_PROCESS_RES;
constexpr int k_max_process_res = DA3_MAX_PROCESS_RES;
// Input images and processed images larger than this many pixels are refused.
constexpr int64_t k_default_max_image_pixels = 100000000;

// 8-bit RGB image, interleaved, rows tightly packed (stride = width * 3).
struct image_u8 {
    std::vector<uint8_t> data;
    int width = 0, height = 0;
};

// cv2.resize(src, (dst_w, dst_h), interpolation=cv2.INTER_AREA) for 3-channel uint8,
// bit-exact, for dst_w <= src_w and dst_h <= src_h (OpenCV's true area mode).
// Returns false (dst untouched) for non-positive sizes or an enlarging axis.
bool resize_area(const uint8_t *src, int src_w, int src_h, size_t src_stride, int dst_w,
                 int dst_h, image_u8 &dst);

// cv2.resize(src, (dst_w, dst_h), interpolation=cv2.INTER_CUBIC) for 3-channel uint8 with
// OpenCV's own fixed-point implementation (INTER_RESIZE_COEF_BITS = 11, A = -0.75,
// border replicate). Returns false for non-positive sizes.
bool resize_cubic(const uint8_t *src, int src_w, int src_h, size_t src_stride, int dst_w,
                  int dst_h, image_u8 &dst);

// Geometry of one image through the official pipeline.
struct resize_plan {
    int orig_w = 0, orig_h = 0;
    int bound_w = 0, bound_h = 0;   // after the boundary resize (== orig when skipped)
    int patch_w = 0, patch_h = 0;   // after rounding to multiples of 14 (or 1)
    int out_w = 0, out_h = 0;       // after the batch center crop
    int crop_x = 0, crop_y = 0;     // image crop offset (torchvision center_crop rounding)
    int ixt_crop_x = 0, ixt_crop_y = 0;  // offset the official code subtracts from cx, cy
};

// Computes the plans of a batch (validates the images, process_res, sizes).
da3_status plan_batch(const da3_image *images, int n, int process_res, da3_resize_method method,
                      std::vector<resize_plan> &plans, std::string &err,
                      int64_t max_image_pixels = k_default_max_image_pixels);

// Official preprocessing of a batch: resized + cropped uint8 images, all out_w x out_h
// (these are the exact cv2 pixels, before normalization). `plans` optional.
da3_status preprocess_batch(const da3_image *images, int n, int process_res,
                            da3_resize_method method, std::vector<image_u8> &out,
                            std::string &err, std::vector<resize_plan> *plans = nullptr,
                            int64_t max_image_pixels = k_default_max_image_pixels);

// torchvision ToTensor + Normalize in float32: out[c][y][x] = (u / 255 - mean[c]) / std[c],
// out holds 3 * height * width floats (CHW).
void normalize_chw(const image_u8 &img, const float mean[3], const float std[3], float *out);

// The official `processed_images` (api.py _add_processed_images): the normalized input
// denormalized in float64, clipped to [0, 1], times 255 and truncated to uint8. This is
// the resized pixel or one less. out holds height * width * 3 bytes (HWC).
void processed_image_u8(const image_u8 &img, const float mean[3], const float std[3],
                        uint8_t *out);

// Official intrinsics update (_resize_ixt twice, then the batch crop), float32 like numpy
// on a float32 K: row 0 *= float(bound_w / orig_w) ..., then cx -= ixt_crop_x, cy -= ixt_crop_y.
// K is 3x3 row-major, at the original image size on input.
void adjust_intrinsics(const resize_plan &plan, float K[9]);

}  // namespace da3

#endif  // DA3_PREPROCESS_H
