// SPDX-License-Identifier: MIT
// No heap allocation in a steady-state training step: this program replaces the global
// operator new and counts, then trains reference 1's model on a DataLoader, on one thread and
// on two. It also wraps
// malloc for the code compiled here, which includes every inlined Eigen kernel: Eigen's own
// large products would malloc their packing buffers on every call (above
// EIGEN_STACK_ALLOCATION_LIMIT, 128 KB), which no operator new sees; Linear's products keep
// theirs (detail/gemm.hpp). Both counts must be zero after the first epoch, and around checks
// that pass.
#include <atomic>
#include <backprop/backprop.hpp>
#include <backprop/io/mnist.hpp>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "../../examples/mnist/models.hpp"

namespace {
std::atomic<long> allocations{0};  // operator new
std::atomic<long> mallocs{0};      // malloc called directly by this program's code
}  // namespace

extern "C" void* __real_malloc(std::size_t);

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = __real_malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

// Linked with -Wl,--wrap=malloc (see tests/CMakeLists.txt): calls to malloc from this
// program's own code, which includes every inlined Eigen kernel, come here first.
extern "C" void* __wrap_malloc(std::size_t n) {
  mallocs.fetch_add(1, std::memory_order_relaxed);
  return __real_malloc(n);
}

// Trains for 3 epochs on `threads` threads, clearing the gradients to zero or to none
// (zero_grad(true): each backward then resizes them back), each epoch followed by a test
// pass; returns false when a steady-state step or test pass allocated.
bool no_allocation_in_steady_state(int threads, bool set_to_none) {
  using namespace backprop;
  set_num_threads(threads);  // the helpers start here, not in a counted step
  // 1000 samples of 784 features: batches of 64 and a last one of 40, as MNIST's 60000 % 64.
  Generator gen(1);
  const Tensor<float> images = Tensor<float>::randn({1000, 784}, gen);
  Tensor<std::int64_t> labels({1000});
  for (Index i = 0; i < labels.numel(); ++i) labels[i] = i % 10;
  io::DataLoader<float> loader(images, labels, 64, /*shuffle=*/true, /*seed=*/3);

  mnist::Net<float> model;
  model.set_input_requires_grad(false);  // as the MNIST example trains it
  SGD<float> optimizer(model.parameters(), 0.01, 0.5);
  StepLR<SGD<float>> schedule(optimizer, 5, 0.1, true);
  CrossEntropyLoss<float> criterion;

  long counted = 0, counted_mallocs = 0, steps = 0;
  for (Index epoch = 0; epoch < 3; ++epoch) {
    model.train();
    schedule.set_epoch(epoch);
    loader.set_epoch(static_cast<std::uint64_t>(epoch));
    for (Index b = 0; b < loader.num_batches(); ++b) {
      const long before = allocations.load(), mallocs_before = mallocs.load();
      const io::Batch<float>& batch = loader.batch(b);
      optimizer.zero_grad(set_to_none);
      const float loss = criterion.forward(model.forward(batch.images), batch.labels);
      model.backward(criterion.backward());
      optimizer.step();
      const long during = allocations.load() - before;
      // The first epoch sizes every buffer (both batch shapes, the momentum buffers).
      if (epoch > 0) counted += during, counted_mallocs += mallocs.load() - mallocs_before, ++steps;
      if (epoch > 0 && during != 0)
        std::printf("epoch %ld batch %ld: %ld operator new calls (loss %g)\n",
                    static_cast<long>(epoch), static_cast<long>(b), during,
                    static_cast<double>(loss));
    }
    // A test pass, as the example's after each epoch: eval() under a NoGradGuard, where the
    // modules set their saved copies aside. Neither it nor the next epoch's training allocates.
    model.eval();
    const long before = allocations.load(), mallocs_before = mallocs.load();
    {
      NoGradGuard no_grad;
      for (Index b = 0; b < loader.num_batches(); ++b) model.forward(loader.batch(b).images);
    }
    const long during = allocations.load() - before;
    if (epoch > 0) counted += during, counted_mallocs += mallocs.load() - mallocs_before;
    if (epoch > 0 && during != 0)
      std::printf("epoch %ld test pass: %ld operator new calls\n", static_cast<long>(epoch),
                  during);
  }
  const char* mode = set_to_none ? "zero_grad(true)" : "zero_grad()";
  std::printf("%d thread(s), %s: %ld operator new calls in %ld steady-state training steps\n",
              threads, mode, counted, steps);
  std::printf(
      "%d thread(s), %s: %ld malloc calls from the code compiled here (Eigen's kernels "
      "included)\n",
      threads, mode, counted_mallocs);
  return counted == 0 && counted_mallocs == 0 && steps > 0;
}

// A check that passes formats nothing: check() builds its message only on failure, so the
// shapes handed to it must not be formatted before (an eager shape_str built a string on every
// call of every forward and backward). The shape prints longer than std::string's inline
// buffer, so formatting it would allocate.
bool passing_checks_allocate_nothing() {
  using namespace backprop;
  const Shape shape{100000, 200000, 300000};  // "[100000, 200000, 300000]"
  const long before = allocations.load(), mallocs_before = mallocs.load();
  detail::check(shape.size() == 3, "test", "x has shape ", detail::shape_str(shape));
  detail::check_grad_output_shape(shape, shape, "test");
  const long during = allocations.load() - before, mallocs_during = mallocs.load() - mallocs_before;
  std::printf("passing checks: %ld operator new calls, %ld mallocs\n", during, mallocs_during);
  return during == 0 && mallocs_during == 0;
}

// One thread, and two: with two, the helper runs parts of the products and of the optimizer,
// and must not allocate either (a buffer of its own first grown when it first ran some part
// would allocate whenever that happened, deep into training).
int main() {
  const bool checks = passing_checks_allocate_nothing();
  bool steady = true;
  for (const bool set_to_none : {false, true})
    for (const int threads : {1, 2})
      steady = no_allocation_in_steady_state(threads, set_to_none) && steady;
  backprop::set_num_threads(1);
  return checks && steady ? 0 : 1;
}
