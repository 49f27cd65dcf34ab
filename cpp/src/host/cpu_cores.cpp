#include "host/cpu_cores.h"

#include <cstdio>
#include <set>
#include <thread>
#include <utility>

#if defined(__linux__)
#include <sched.h>
#endif

namespace da3 {

namespace {
#if defined(__linux__)
// One integer from a small sysfs file; false if absent or unreadable.
bool read_int(const char *path, long &out) {
    FILE *f = std::fopen(path, "r");
    if (!f) return false;
    const bool ok = std::fscanf(f, "%ld", &out) == 1;
    std::fclose(f);
    return ok;
}

// ceil(quota / period) of cgroup v2's cpu.max ("max 100000": no quota -> 0)
int cgroup_cpu_quota() {
    FILE *f = std::fopen("/sys/fs/cgroup/cpu.max", "r");
    if (!f) return 0;
    char quota[32] = {};
    long period = 0;
    const bool ok = std::fscanf(f, "%31s %ld", quota, &period) == 2;
    std::fclose(f);
    long q = 0;
    if (!ok || period <= 0 || std::sscanf(quota, "%ld", &q) != 1 || q <= 0) return 0;
    return (int)((q + period - 1) / period);
}
#endif
}  // namespace

int physical_cores() {
    const unsigned hw = std::thread::hardware_concurrency();
    int n = hw > 0 ? (int)hw : 1;
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        std::set<std::pair<long, long>> cores;
        for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (!CPU_ISSET(c, &set)) continue;
            char path[128];
            long pkg = -1, core = -1;
            std::snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
            const bool ok = read_int(path, pkg);
            std::snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
            if (ok && read_int(path, core)) {
                cores.insert({pkg, core});
            } else {
                cores.insert({-1 - c, -1});  // no topology: count the CPU itself
            }
        }
        if (!cores.empty()) n = (int)cores.size();
    }
    const int quota = cgroup_cpu_quota();
    if (quota > 0 && quota < n) n = quota;
#endif
    return n > 0 ? n : 1;
}

}  // namespace da3
