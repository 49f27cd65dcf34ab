// The default thread count: physical cores available to this process.
#pragma once

namespace da3 {

// Physical cores this process may run on, >= 1: the CPUs of its affinity mask counted once per
// (package, core) pair of /sys/devices/system/cpu/cpu*/topology (hyper-threads do not help our
// GEMM-bound work), capped by the cgroup v2 CPU quota (/sys/fs/cgroup/cpu.max, rounded up).
// Outside Linux: std::thread::hardware_concurrency(). Computed on every call (cheap).
int physical_cores();

}  // namespace da3
