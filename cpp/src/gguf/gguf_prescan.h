// Structural check of a GGUF file before ggml's reader parses it (see gguf_prescan.cpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace da3 {

// "" when the header, metadata and tensor table of the file `f` (of `size` bytes, read from
// its start) are sound, else what is wrong.
std::string gguf_prescan_file(FILE *f, uint64_t size);

}  // namespace da3
