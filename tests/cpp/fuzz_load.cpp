// Coverage-guided fuzzer (libFuzzer) for the GGUF pre-scan, ggml's GGUF reader and the model
// loader: each input is written to an in-memory file (memfd) and given to da3_load; a model
// that loads also runs one 28 x 28 inference. Any crash, sanitizer report, abort or leak is a
// finding. Outside CI; built by tests/cpp/build_fuzz.sh (clang with libFuzzer), seeded with a
// tiny valid model (tests/cpp/make_fuzz_seed.py), run on one core:
//   bash tests/cpp/build_fuzz.sh
//   mkdir -p corpus && python3 tests/cpp/make_fuzz_seed.py \
//       ../shared/fixtures/da3-small-anchor-layout/da3-small-rand-f16.gguf corpus/seed.gguf
//   build/fuzz/da3_fuzz_load corpus/ -max_total_time=600 -max_len=500000 -rss_limit_mb=4096 -timeout=30
#include "depth_anything.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const int fd = memfd_create("da3_fuzz.gguf", 0);
    if (fd < 0) std::abort();
    for (size_t done = 0; done < size;) {
        const ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) std::abort();
        done += (size_t)w;
    }
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    da3_context_params cp = da3_context_default_params();
    cp.n_threads = 1;
    da3_context *ctx = nullptr;
    if (da3_load(path, &cp, &ctx) == DA3_OK) {
        std::vector<float> input(3 * 28 * 28, 0.25f);
        da3_infer_params ip = da3_infer_default_params();
        da3_result *res = nullptr;
        if (da3_infer_tensor(ctx, input.data(), 1, 28, 28, nullptr, 0, nullptr, &ip, &res) == DA3_OK) da3_result_free(res);
        da3_free(ctx);
    }
    close(fd);
    return 0;
}
