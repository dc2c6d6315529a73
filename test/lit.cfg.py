# lit configuration of the moec FileCheck suites.
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "moec"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moec_obj_root, "test")

llvm_config.use_default_substitutions()  # FileCheck, not, count, split-file
# Sanitizer builds pass their options down (see test/CMakeLists.txt).
llvm_config.with_system_environment(["ASAN_OPTIONS", "UBSAN_OPTIONS"])
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.moec_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(
    ["moe-opt"], [config.moec_tools_dir])

config.substitutions.append(("%moec_src", config.moec_src_root))
config.substitutions.append(("%moec_tools", config.moec_tools_dir))
config.substitutions.append(("%python", config.python_executable))
# The models of the sweeps (test/CMakeLists.txt: all of them, or under
# sanitizers the ones that cover every op), their count for FileCheck -D,
# and both lists for the test that checks the cover.
def quoted(paths):
    return " ".join("'" + p + "'" for p in paths)
config.substitutions.append(("%sweep_count", str(len(config.moec_sweep_models))))
config.substitutions.append(("%sweep_models", quoted(config.moec_sweep_models)))
config.substitutions.append(("%all_models", quoted(config.moec_all_models)))
config.substitutions.append(("%covering_models", quoted(config.moec_covering_models)))
config.substitutions.append(("%covering_count", str(len(config.moec_covering_models))))
llvm_config.add_tool_substitutions(["moec", "moe-run", "moe-inspect"], [config.moec_tools_dir])

# Optional tools become features, so tests can say `REQUIRES: ptxas`.
if config.moec_have_cuda:
    config.available_features.add("cuda-toolkit")
if config.moec_have_nvrtc:
    config.available_features.add("nvrtc")
if config.moec_ptxas and os.path.exists(config.moec_ptxas):
    config.available_features.add("ptxas")

# A build with AddressSanitizer and UndefinedBehaviorSanitizer: tests whose
# extra work is in uninstrumented tools (NVRTC, ptxas) say UNSUPPORTED there.
if config.moec_sanitizers:
    config.available_features.add("sanitizers")

# The nccl channel can load NCCL (runs that need a GPU still skip).
try:
    import ctypes
    ctypes.CDLL(os.environ.get("MOEC_NCCL") or "libnccl.so.2")
    config.available_features.add("nccl-library")
except OSError:
    pass

# Multi-rank runs: the mpi channel is built and mpirun is there. %mpirun
# lets a test run more ranks than cores, as root (CI containers), with one
# thread per rank, and keeps Open MPI's session directory beside the test's
# own files (%t is substituted after it): mpiruns of other tests that start
# at the same moment would otherwise race to create /tmp/ompi.<host>.<uid>.
if config.moec_have_mpi and config.moec_mpirun and os.path.exists(config.moec_mpirun):
    config.available_features.add("mpi")
    mpirun = config.moec_mpirun + " --oversubscribe --mca orte_tmpdir_base %t.ompi"
    # Sanitizer builds: Open MPI never frees what MPI_Init allocates, and its
    # plugins unwind without frame pointers, so LeakSanitizer reports leaks
    # whose two-frame stacks no suppression can match: ranks run without leak
    # detection (ASan's other checks stay on; single-process runs keep it).
    if config.moec_sanitizers:
        mpirun += " -x ASAN_OPTIONS=allow_user_poisoning=0:detect_leaks=0"
    config.substitutions.append(("%mpirun", mpirun))
    for name, value in [("OMPI_ALLOW_RUN_AS_ROOT", "1"), ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
                        ("OMP_NUM_THREADS", "1")]:
        config.environment[name] = value
