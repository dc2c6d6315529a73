// moec_cuda_emu.h - CUDA's kernel-side vocabulary on the host, for cuda-emu.
//
// The cuda-emu device compiles a plan's generated kernels with the host C++
// compiler, this header force-included and MOEC_CUDA_EMU defined, and runs
// them on the CPU: blocks one after another, the threads of a block either
// one after another (kernels without barriers) or as fibers that switch at
// every __syncthreads (their own stacks; a few instructions switch them on
// x86-64, ucontext elsewhere), so block reductions behave as on a GPU.
// Blocks never run at once, so __shared__ variables are function statics.
#ifndef MOEC_CUDA_EMU_H
#define MOEC_CUDA_EMU_H

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <math.h>
#include <memory>
#include <ucontext.h>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct alignas(8) float2 {
  float x, y;
};

struct alignas(16) float4 {
  float x, y, z, w;
};

struct alignas(16) uint4 {
  unsigned x, y, z, w;
};

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

namespace moec_emu {

#if defined(__x86_64__)
// Switches stacks: saves the callee-saved registers on the current stack,
// stores its pointer in *from, and resumes the stack `to` (saved the same
// way). No signal mask and no floating-point environment to save, unlike
// swapcontext, which makes two system calls per switch: barrier-heavy
// kernels run several times faster.
__attribute__((naked, noinline)) static void switchStack(void **from, void *to) {
  asm volatile("pushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\t"
               "pushq %r15\n\tmovq %rsp, (%rdi)\n\tmovq %rsi, %rsp\n\tpopq %r15\n\t"
               "popq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n\tret\n");
}
#define MOEC_EMU_STACK_SWITCH 1
#endif

// AddressSanitizer's fiber annotations, present when the process that
// loads the kernels is sanitized (weak: null otherwise). Without them ASan
// takes a fiber's stack for heap and LeakSanitizer's exit scan crashed.
extern "C" {
void __sanitizer_start_switch_fiber(void **fakeStackSave, const void *bottom, size_t size)
    __attribute__((weak));
void __sanitizer_finish_switch_fiber(void *fakeStackSave, const void **bottomOld, size_t *sizeOld)
    __attribute__((weak));
}

/// Tells ASan the stack [bottom, bottom + size) is next (`save` null: the
/// current one is left for good).
inline void startSwitch(void **save, const void *bottom, size_t size) {
  if (__sanitizer_start_switch_fiber)
    __sanitizer_start_switch_fiber(save, bottom, size);
}

/// Tells ASan the switch is done; the stack switched from goes to
/// `bottomOld`, `sizeOld` when given.
inline void finishSwitch(void *save, const void **bottomOld, size_t *sizeOld) {
  if (__sanitizer_finish_switch_fiber)
    __sanitizer_finish_switch_fiber(save, bottomOld, sizeOld);
}

struct Fiber {
  const char *bottom = nullptr; // its stack, for ASan
  size_t size = 0;
  void *fakeStack = nullptr;    // ASan's, while switched out
#ifdef MOEC_EMU_STACK_SWITCH
  void *stack = nullptr; // saved stack pointer while switched out
#else
  ucontext_t context;
#endif
  dim3 threadIdx;
  bool finished = false;
};

/// The launch in progress on this host thread.
struct Launch {
  dim3 gridDim, blockDim, blockIdx;
  Fiber *current = nullptr;
#ifdef MOEC_EMU_STACK_SWITCH
  void *scheduler = nullptr;
#else
  ucontext_t scheduler;
#endif
  void (*body)(void *) = nullptr;
  void *closure = nullptr;
  // The host thread's stack, as ASan reports it on the first switch.
  const void *schedulerBottom = nullptr;
  size_t schedulerSize = 0;
  void *schedulerFakeStack = nullptr;
};

inline Launch &launchState() {
  static thread_local Launch launch;
  return launch;
}

inline void fiberMain() {
  Launch &launch = launchState();
  finishSwitch(nullptr, &launch.schedulerBottom, &launch.schedulerSize);
  launch.body(launch.closure);
  launch.current->finished = true;
  // Back to the scheduler for good: this stack is never resumed.
  startSwitch(nullptr, launch.schedulerBottom, launch.schedulerSize);
#ifdef MOEC_EMU_STACK_SWITCH
  switchStack(&launch.current->stack, launch.scheduler);
#endif
  // (ucontext: returning resumes uc_link, the scheduler.)
}

/// Prepares `fiber` to start fiberMain on `stack` of `size` bytes.
inline void startFiber(Fiber &fiber, char *stack, size_t size) {
  fiber.bottom = stack;
  fiber.size = size;
#ifdef MOEC_EMU_STACK_SWITCH
  // The frame switchStack pops: six registers, then fiberMain as the
  // return address, above it a never-used one so that fiberMain starts with
  // the stack aligned as after a call.
  auto *top = reinterpret_cast<void **>(reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15));
  top[-1] = nullptr;
  top[-2] = reinterpret_cast<void *>(&fiberMain);
  for (int r = 3; r <= 8; ++r)
    top[-r] = nullptr;
  fiber.stack = top - 8;
#else
  getcontext(&fiber.context);
  fiber.context.uc_stack.ss_sp = stack;
  fiber.context.uc_stack.ss_size = size;
  fiber.context.uc_link = &launchState().scheduler;
  makecontext(&fiber.context, fiberMain, 0);
#endif
}

/// Runs `fiber` until its next barrier or its end.
inline void resumeFiber(Fiber &fiber) {
  Launch &state = launchState();
  state.current = &fiber;
  startSwitch(&state.schedulerFakeStack, fiber.bottom, fiber.size);
#ifdef MOEC_EMU_STACK_SWITCH
  switchStack(&state.scheduler, fiber.stack);
#else
  swapcontext(&state.scheduler, &fiber.context);
#endif
  finishSwitch(state.schedulerFakeStack, nullptr, nullptr);
}

/// Runs `body` once per thread of every block of the grid.
template <typename Body>
void launch(const unsigned *grid, const unsigned *block, bool usesBarriers, Body body) {
  Launch &state = launchState();
  state.gridDim = {grid[0], grid[1], grid[2]};
  state.blockDim = {block[0], block[1], block[2]};
  state.body = [](void *closure) { (*static_cast<Body *>(closure))(); };
  state.closure = &body;
  unsigned threads = block[0] * block[1] * block[2];
  std::vector<Fiber> fibers(threads);
  constexpr size_t kStack = 64 * 1024;
  // Not zeroed: fibers only use what they write.
  std::unique_ptr<char[]> stacks(usesBarriers ? new char[threads * kStack] : nullptr);
  for (unsigned bz = 0; bz < grid[2]; ++bz)
    for (unsigned by = 0; by < grid[1]; ++by)
      for (unsigned bx = 0; bx < grid[0]; ++bx) {
        state.blockIdx = {bx, by, bz};
        for (unsigned t = 0; t < threads; ++t) {
          Fiber &fiber = fibers[t];
          fiber.threadIdx = {t % block[0], t / block[0] % block[1], t / (block[0] * block[1])};
          fiber.finished = false;
          if (!usesBarriers) {
            state.current = &fiber;
            body();
            continue;
          }
          startFiber(fiber, stacks.get() + t * kStack, kStack);
        }
        if (!usesBarriers)
          continue;
        // Each round runs every live thread to its next barrier (or its end).
        for (bool live = true; live;) {
          live = false;
          for (Fiber &fiber : fibers) {
            if (fiber.finished)
              continue;
            resumeFiber(fiber);
            live = live || !fiber.finished;
          }
        }
      }
  state.current = nullptr;
}

/// Yields to the scheduler, which resumes this thread once every thread of
/// the block has reached the barrier.
inline void barrier() {
  Launch &launch = launchState();
  Fiber &fiber = *launch.current;
  startSwitch(&fiber.fakeStack, launch.schedulerBottom, launch.schedulerSize);
#ifdef MOEC_EMU_STACK_SWITCH
  switchStack(&fiber.stack, launch.scheduler);
#else
  swapcontext(&fiber.context, &launch.scheduler);
#endif
  finishSwitch(fiber.fakeStack, &launch.schedulerBottom, &launch.schedulerSize);
}

} // namespace moec_emu

#define threadIdx (moec_emu::launchState().current->threadIdx)
#define blockIdx (moec_emu::launchState().blockIdx)
#define blockDim (moec_emu::launchState().blockDim)
#define gridDim (moec_emu::launchState().gridDim)

inline void __syncthreads() { moec_emu::barrier(); }

// Blocks and threads run one at a time, so an atomic is a plain update.
template <typename T> inline T atomicAdd(T *address, T value) {
  T old = *address;
  *address = old + value;
  return old;
}

inline float __int_as_float(int bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

inline float __uint_as_float(unsigned bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

inline unsigned __float_as_uint(float value) {
  unsigned bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

#endif // MOEC_CUDA_EMU_H
