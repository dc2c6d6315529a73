// GradientCheckTest.cpp - every gradient kernel against central finite
// differences of its forward kernel.
//
// For a forward op f and a random cotangent r, L(x) = Σ r · f(x); the
// gradient op's output must match (L(x + h e_i) − L(x − h e_i)) / 2h on
// sampled coordinates i of every differentiable input. Kernels compute in
// f32, so L is accumulated in f64 and h is large enough for f32 rounding.
#include "runtime/core/Kernel.h"
#include "runtime/cpu/CpuDevice.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <variant>
#include <vector>

using namespace moec;
using namespace moec::rt;

namespace {

/// A tensor that owns its bytes.
struct Buffer {
  std::vector<float> f;
  std::vector<int32_t> i;
  TensorRef ref;
  static Buffer floats(std::vector<int64_t> shape) {
    Buffer b;
    b.ref.shape = std::move(shape);
    b.f.assign(b.ref.numel(), 0.0f);
    b.ref.data = b.f.data();
    return b;
  }
  static Buffer ints(std::vector<int64_t> shape, std::vector<int32_t> values) {
    Buffer b;
    b.ref.shape = std::move(shape);
    b.ref.dtype = DType::i32;
    b.i = std::move(values);
    b.ref.data = b.i.data();
    return b;
  }
  void rebind() { ref.data = ref.dtype == DType::i32 ? (void *)i.data() : (void *)f.data(); }
};

using AttrValue =
    std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>>;
struct NamedAttr {
  std::string name;
  AttrValue value;
};

/// A plan step built in memory, for a StepContext.
struct StepBuffer {
  flatbuffers::FlatBufferBuilder fbb;
  const plan::Step *build(const std::string &op, const std::vector<NamedAttr> &attrs) {
    std::vector<flatbuffers::Offset<plan::Attr>> offsets;
    for (const NamedAttr &a : attrs) {
      plan::AttrValue kind;
      flatbuffers::Offset<void> value;
      if (auto *v = std::get_if<int64_t>(&a.value)) {
        kind = plan::AttrValue::IntAttr;
        value = plan::CreateIntAttr(fbb, *v).Union();
      } else if (auto *d = std::get_if<double>(&a.value)) {
        kind = plan::AttrValue::FloatAttr;
        value = plan::CreateFloatAttr(fbb, *d).Union();
      } else if (auto *b = std::get_if<bool>(&a.value)) {
        kind = plan::AttrValue::BoolAttr;
        value = plan::CreateBoolAttr(fbb, *b).Union();
      } else if (auto *s = std::get_if<std::string>(&a.value)) {
        kind = plan::AttrValue::StringAttr;
        value = plan::CreateStringAttrDirect(fbb, s->c_str()).Union();
      } else if (auto *f = std::get_if<std::vector<double>>(&a.value)) {
        kind = plan::AttrValue::FloatsAttr;
        value = plan::CreateFloatsAttrDirect(fbb, f).Union();
      } else {
        kind = plan::AttrValue::IntsAttr;
        value = plan::CreateIntsAttrDirect(fbb, &std::get<std::vector<int64_t>>(a.value)).Union();
      }
      offsets.push_back(plan::CreateAttr(fbb, fbb.CreateString(a.name), kind, value));
    }
    fbb.Finish(plan::CreateStepDirect(fbb, op.c_str(), nullptr, nullptr, &offsets));
    return flatbuffers::GetRoot<plan::Step>(fbb.GetBufferPointer());
  }
};

/// Where a gradient op's operand comes from.
struct Ref {
  enum Kind { Input, Output, Cotangent } kind;
  int index = 0;
};
Ref in(int i) { return {Ref::Input, i}; }
Ref out(int i) { return {Ref::Output, i}; }
Ref dy() { return {Ref::Cotangent, 0}; }

struct Case {
  std::string name;
  std::string op;
  std::vector<NamedAttr> attrs;
  std::vector<Buffer> inputs;
  std::vector<std::vector<int64_t>> outputShapes; // f32 unless listed in intOutputs
  std::vector<int> intOutputs;
  int differentiatedOutput = 0;
  std::string gradOp;
  std::vector<NamedAttr> gradAttrs;
  std::vector<Ref> gradOperands;
  /// Forward input each gradient output belongs to (-1: skip).
  std::vector<int> gradOutputsOf;
  double h = 1e-2, rtol = 3e-2;
};

class GradientCheck {
public:
  // CPU buffers are host memory: the cases hand kernels host vectors.
  GradientCheck() : device_(cpu::CpuDevice::create()) {}

  std::vector<Buffer> forward(Case &c, std::vector<Buffer> &inputs) {
    std::vector<Buffer> outs;
    for (size_t o = 0; o < c.outputShapes.size(); ++o) {
      bool isInt = std::find(c.intOutputs.begin(), c.intOutputs.end(), int(o)) != c.intOutputs.end();
      Buffer b = isInt ? Buffer::ints(c.outputShapes[o], std::vector<int32_t>(TensorRef{nullptr, DType::i32, c.outputShapes[o]}.numel()))
                       : Buffer::floats(c.outputShapes[o]);
      outs.push_back(std::move(b));
    }
    for (Buffer &b : outs)
      b.rebind();
    run(c.op, c.attrs, refs(inputs), refs(outs));
    return outs;
  }

  double loss(Case &c, std::vector<Buffer> &inputs, const std::vector<float> &r) {
    std::vector<Buffer> outs = forward(c, inputs);
    const Buffer &y = outs[c.differentiatedOutput];
    double sum = 0;
    for (size_t k = 0; k < y.f.size(); ++k)
      sum += double(r[k]) * y.f[k];
    return sum;
  }

  void check(Case c) {
    SCOPED_TRACE(c.name);
    std::mt19937 rng(17);
    for (Buffer &b : c.inputs)
      b.rebind();
    std::vector<Buffer> outs = forward(c, c.inputs);
    Buffer cot = Buffer::floats(outs[c.differentiatedOutput].ref.shape);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float &v : cot.f)
      v = normal(rng);

    std::vector<TensorRef *> gradIn;
    for (Ref ref : c.gradOperands)
      gradIn.push_back(ref.kind == Ref::Input ? &c.inputs[ref.index].ref
                       : ref.kind == Ref::Output ? &outs[ref.index].ref
                                                  : &cot.ref);
    std::vector<Buffer> grads;
    for (int owner : c.gradOutputsOf)
      grads.push_back(Buffer::floats(owner >= 0 ? c.inputs[owner].ref.shape : std::vector<int64_t>{1}));
    // Gradient outputs not mapped to an input still need their real shape.
    for (size_t g = 0; g < grads.size(); ++g)
      grads[g].rebind();
    run(c.gradOp, c.gradAttrs, gradIn, refs(grads));

    for (size_t g = 0; g < grads.size(); ++g) {
      int owner = c.gradOutputsOf[g];
      if (owner < 0)
        continue;
      Buffer &x = c.inputs[owner];
      double scale = 1e-6;
      for (float v : grads[g].f)
        scale = std::max(scale, double(std::fabs(v)));
      std::uniform_int_distribution<size_t> pick(0, x.f.size() - 1);
      for (int sample = 0; sample < 12; ++sample) {
        size_t k = pick(rng);
        float saved = x.f[k];
        x.f[k] = saved + float(c.h);
        double plus = loss(c, c.inputs, cot.f);
        x.f[k] = saved - float(c.h);
        double minus = loss(c, c.inputs, cot.f);
        x.f[k] = saved;
        double numeric = (plus - minus) / (2 * c.h);
        double analytic = grads[g].f[k];
        EXPECT_NEAR(analytic, numeric, c.rtol * (std::fabs(numeric) + 0.05 * scale))
            << "gradient output " << g << " (input " << owner << "), coordinate " << k;
      }
    }
  }

private:
  static std::vector<TensorRef *> refs(std::vector<Buffer> &buffers) {
    std::vector<TensorRef *> out;
    for (Buffer &b : buffers)
      out.push_back(&b.ref);
    return out;
  }
  void run(const std::string &op, const std::vector<NamedAttr> &attrs,
           std::vector<TensorRef *> inputs, std::vector<TensorRef *> outputs) {
    StepBuffer step;
    const plan::Step *s = step.build(op, attrs);
    const Kernel *kernel = device_->findKernel(op);
    ASSERT_NE(kernel, nullptr) << op;
    Status status = (*kernel)(
        StepContext(*s, device_->defaultStream(), std::move(inputs), std::move(outputs)));
    ASSERT_TRUE(status.isOk()) << status.message();
  }
  std::unique_ptr<cpu::CpuDevice> device_;
};

Buffer randn(std::vector<int64_t> shape, unsigned seed, float scale = 1.0f, float shift = 0.0f) {
  Buffer b = Buffer::floats(std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float &v : b.f)
    v = shift + scale * normal(rng);
  return b;
}

/// Softmax rows of random logits: valid router scores.
Buffer scores(int64_t T, int64_t E, unsigned seed) {
  Buffer b = randn({T, E}, seed);
  for (int64_t t = 0; t < T; ++t) {
    double sum = 0;
    for (int64_t e = 0; e < E; ++e)
      sum += (b.f[t * E + e] = std::exp(b.f[t * E + e]));
    for (int64_t e = 0; e < E; ++e)
      b.f[t * E + e] /= sum;
  }
  return b;
}

TEST(GradientCheck, DenseOps) {
  GradientCheck g;
  g.check({"rms_norm", "moe.rms_norm", {{"eps", 1e-6}}, {randn({3, 8}, 1), randn({8}, 2, 0.3f, 1.0f)},
           {{3, 8}}, {}, 0, "moe.rms_norm_grad", {{"eps", 1e-6}}, {in(0), in(1), dy()}, {0, 1}});
  g.check({"layer_norm", "moe.layer_norm", {{"eps", 1e-5}},
           {randn({3, 8}, 3), randn({8}, 4, 0.3f, 1.0f), randn({8}, 5)}, {{3, 8}}, {}, 0,
           "moe.layer_norm_grad", {{"eps", 1e-5}}, {in(0), in(1), dy()}, {0, 1, 2}});
  g.check({"linear", "moe.linear", {}, {randn({2, 3, 5}, 6), randn({4, 5}, 7)}, {{2, 3, 4}}, {}, 0,
           "moe.linear_grad", {}, {in(0), in(1), dy()}, {0, 1}});
  g.check({"rope", "moe.rope", {{"theta", 100.0}}, {randn({1, 4, 2, 6}, 8)}, {{1, 4, 2, 6}}, {}, 0,
           "moe.rope_grad", {{"theta", 100.0}}, {dy()}, {0}});
  g.check({"attention_gqa_causal", "moe.attention", {{"causal", true}},
           {randn({2, 4, 4, 3}, 9), randn({2, 4, 2, 3}, 10), randn({2, 4, 2, 3}, 11)},
           {{2, 4, 4, 3}}, {}, 0, "moe.attention_grad", {{"causal", true}},
           {in(0), in(1), in(2), dy()}, {0, 1, 2}});
  g.check({"rope_interleaved",
           "moe.rope",
           {{"theta", 100.0}, {"interleaved", true}},
           {randn({1, 4, 2, 6}, 8)},
           {{1, 4, 2, 6}},
           {},
           0,
           "moe.rope_grad",
           {{"theta", 100.0}, {"interleaved", true}},
           {dy()},
           {0}});
  // Values wider than queries and keys (latent attention's are narrower).
  g.check({"attention_value_width",
           "moe.attention",
           {{"causal", true}},
           {randn({2, 4, 4, 3}, 9), randn({2, 4, 2, 3}, 10), randn({2, 4, 2, 5}, 11)},
           {{2, 4, 4, 5}},
           {},
           0,
           "moe.attention_grad",
           {{"causal", true}},
           {in(0), in(1), in(2), dy()},
           {0, 1, 2}});
  g.check({"attention_sliding_window",
           "moe.attention",
           {{"causal", true}, {"window", int64_t(2)}},
           {randn({2, 5, 4, 3}, 9), randn({2, 5, 2, 3}, 10), randn({2, 5, 2, 3}, 11)},
           {{2, 5, 4, 3}},
           {},
           0,
           "moe.attention_grad",
           {{"causal", true}, {"window", int64_t(2)}},
           {in(0), in(1), in(2), dy()},
           {0, 1, 2}});
  // gpt-oss's attention sinks: one more logit per query head, in a window.
  g.check(
      {"attention_sinks",
       "moe.attention",
       {{"causal", true}, {"window", int64_t(3)}},
       {randn({2, 5, 4, 3}, 9), randn({2, 5, 2, 3}, 10), randn({2, 5, 2, 3}, 11), randn({4}, 20)},
       {{2, 5, 4, 3}},
       {},
       0,
       "moe.attention_grad",
       {{"causal", true}, {"window", int64_t(3)}},
       {in(0), in(1), in(2), dy(), in(3)},
       {0, 1, 2, 3}});
  // Llama 4: chunks of 3 positions, and the queries' temperature (floor 2,
  // so that it grows over these 7 positions).
  g.check({"attention_chunked",
           "moe.attention",
           {{"causal", true}, {"chunk", int64_t(3)}},
           {randn({2, 7, 4, 3}, 9), randn({2, 7, 2, 3}, 10), randn({2, 7, 2, 3}, 11)},
           {{2, 7, 4, 3}},
           {},
           0,
           "moe.attention_grad",
           {{"causal", true}, {"chunk", int64_t(3)}},
           {in(0), in(1), in(2), dy()},
           {0, 1, 2}});
  g.check({"attention_temperature",
           "moe.attention",
           {{"causal", true}, {"temperature_floor", int64_t(2)}, {"temperature_scale", 0.5}},
           {randn({2, 7, 4, 3}, 9), randn({2, 7, 2, 3}, 10), randn({2, 7, 2, 3}, 11)},
           {{2, 7, 4, 3}},
           {},
           0,
           "moe.attention_grad",
           {{"causal", true}, {"temperature_floor", int64_t(2)}, {"temperature_scale", 0.5}},
           {in(0), in(1), in(2), dy()},
           {0, 1, 2}});
  // Granite's multipliers: the gradient is scaled alike.
  g.check({"scale",
           "moe.scale",
           {{"factor", 0.22}},
           {randn({3, 5}, 23)},
           {{3, 5}},
           {},
           0,
           "moe.scale",
           {{"factor", 0.22}},
           {dy()},
           {0}});
  // The gradient of a transpose is the transpose by the inverse permutation.
  g.check({"transpose",
           "moe.transpose",
           {{"permutation", std::vector<int64_t>{1, 2, 0}}},
           {randn({2, 3, 4}, 21)},
           {{3, 4, 2}},
           {},
           0,
           "moe.transpose",
           {{"permutation", std::vector<int64_t>{2, 0, 1}}},
           {dy()},
           {0}});
  {
    // Gates and up projections on both sides of the clamps (limit 1.5),
    // none within the finite-difference step of a bound.
    Buffer pairs = randn({4, 12}, 22, 2.0f);
    for (float &v : pairs.f)
      if (std::abs(std::abs(v) - 1.5f) < 0.1f)
        v += v > 0 ? 0.25f : -0.25f;
    g.check({"clamped_swiglu",
             "moe.clamped_swiglu",
             {{"alpha", 1.702}, {"limit", 1.5}},
             {pairs},
             {{4, 6}},
             {},
             0,
             "moe.clamped_swiglu_grad",
             {{"alpha", 1.702}, {"limit", 1.5}},
             {in(0), dy()},
             {0}});
  }
  g.check({"broadcast",
           "moe.broadcast",
           {},
           {randn({2, 3, 1, 4}, 18)},
           {{2, 3, 5, 4}},
           {},
           0,
           "moe.broadcast_grad",
           {},
           {dy()},
           {0}});
  // A slice's gradient is an insertion into zeros: the forward step
  // ignores its second operand, the zeros the insertion writes into.
  g.check({"extract_slice",
           "tensor.extract_slice",
           {{"static_offsets", std::vector<int64_t>{0, 1, 2}},
            {"static_sizes", std::vector<int64_t>{2, 2, 3}},
            {"static_strides", std::vector<int64_t>{1, 1, 1}}},
           {randn({2, 4, 6}, 19), Buffer::floats({2, 4, 6})},
           {{2, 2, 3}},
           {},
           0,
           "tensor.insert_slice",
           {{"static_offsets", std::vector<int64_t>{0, 1, 2}},
            {"static_sizes", std::vector<int64_t>{2, 2, 3}},
            {"static_strides", std::vector<int64_t>{1, 1, 1}}},
           {dy(), in(1)},
           {0}});
  g.check({"multiply",
           "moe.multiply",
           {},
           {randn({3, 5}, 40), randn({3, 5}, 41)},
           {{3, 5}},
           {},
           0,
           "moe.multiply",
           {},
           {dy(), in(1)},
           {0}});
  for (std::string act : {"relu", "gelu", "gelu_tanh", "silu", "sigmoid"})
    g.check({"activation_" + act, "moe.activation", {{"kind", act}}, {randn({4, 6}, 12)}, {{4, 6}}, {}, 0,
             "moe.activation_grad", {{"kind", act}}, {in(0), dy()}, {0}});
  g.check({"ffn_swiglu", "moe.ffn", {{"activation", std::string("silu")}},
           {randn({3, 4}, 13), randn({6, 4}, 14, 0.5f), randn({4, 6}, 15, 0.5f), randn({6, 4}, 16, 0.5f)},
           {{3, 4}}, {}, 0, "moe.ffn_grad", {{"activation", std::string("silu")}},
           {in(0), in(1), in(2), in(3), dy()}, {0, 1, 2, 3}});
  Buffer targets = Buffer::ints({2, 3}, {0, 4, 2, 1, 3, 3});
  Buffer one = Buffer::floats({});
  one.f = {1.0f};
  g.check({"cross_entropy", "moe.cross_entropy", {}, {randn({2, 3, 5}, 17), targets}, {{}}, {}, 0,
           "moe.cross_entropy_grad", {}, {in(0), in(1), dy()}, {0, -1}});
}

TEST(GradientCheck, LinearAttentionOps) {
  GradientCheck g;
  g.check({"causal_conv1d",
           "moe.causal_conv1d",
           {},
           {randn({2, 6, 5}, 42), randn({5, 4}, 43)},
           {{2, 6, 5}},
           {},
           0,
           "moe.causal_conv1d_grad",
           {},
           {in(0), in(1), dy()},
           {0, 1}});
  // Inputs on both sides of softplus's threshold (20).
  Buffer a = randn({2, 3, 4}, 44, 2.0f);
  a.f[0] = 25.0f, a.f[5] = 30.0f;
  g.check({"delta_decay",
           "moe.delta_decay",
           {},
           {a, randn({4}, 45, 0.5f), randn({4}, 46)},
           {{2, 3, 4}},
           {},
           0,
           "moe.delta_decay_grad",
           {},
           {in(0), in(1), in(2), dy()},
           {0, 1, 2}});
  // Two key heads, each read by two value heads; 70 positions cross the
  // gradient's chunk of 64. Decays in (-1, 0), betas in (0, 1).
  auto rule = [&](std::vector<NamedAttr> attrs, const char *name) {
    Buffer decay = randn({1, 70, 4}, 47, 0.2f, -0.4f), beta = randn({1, 70, 4}, 48, 0.15f, 0.5f);
    Case c{
        name,
        "moe.gated_delta_rule",
        attrs,
        {randn({1, 70, 2, 3}, 49), randn({1, 70, 2, 3}, 50), randn({1, 70, 4, 5}, 51), decay, beta},
        {{1, 70, 4, 5}},
        {},
        0,
        "moe.gated_delta_rule_grad",
        attrs,
        {in(0), in(1), in(2), in(3), in(4), dy()},
        {0, 1, 2, 3, 4}};
    c.h = 2e-3;
    c.rtol = 1e-2;
    g.check(c);
  };
  rule({{"qk_l2norm_eps", 1e-6}}, "gated_delta_rule_l2norm");
  // Two heads, one decaying fast; 20 positions.
  Case lightning{
      "lightning_attention",
      "moe.lightning_attention",
      {{"decay", std::vector<double>{0.7, 0.05}}},
      {randn({2, 20, 2, 4}, 52, 0.5f), randn({2, 20, 2, 4}, 53, 0.5f), randn({2, 20, 2, 4}, 54)},
      {{2, 20, 2, 4}},
      {},
      0,
      "moe.lightning_attention_grad",
      {{"decay", std::vector<double>{0.7, 0.05}}},
      {in(0), in(1), in(2), dy()},
      {0, 1, 2}};
  lightning.rtol = 1e-2;
  g.check(lightning);
  rule({{"scale", 0.3}}, "gated_delta_rule_scaled");
}

TEST(GradientCheck, RouterOps) {
  GradientCheck g;
  for (std::string fn : {"softmax", "sigmoid"})
    g.check({"score_" + fn, "moe.score", {{"function", fn}, {"temperature", fn == "softmax" ? 0.7 : 1.0}},
             {randn({4, 5}, 20)}, {{4, 5}}, {}, 0, "moe.score_grad",
             {{"function", fn}, {"temperature", fn == "softmax" ? 0.7 : 1.0}}, {out(0), dy()}, {0}});
  Buffer tau = Buffer::floats({});
  tau.f = {1.5f};
  g.check({"gumbel_softmax_eval", "moe.gumbel_softmax", {}, {randn({4, 5}, 21), tau}, {{4, 5}}, {}, 0,
           "moe.gumbel_softmax_grad", {}, {out(0), in(1), dy()}, {0}});
  for (std::string kind : {"l2norm", "layernorm", "tanh"})
    g.check({"input_transform_" + kind, "moe.router_input_transform", {{"kind", kind}, {"eps", 1e-6}},
             {randn({3, 6}, 22)}, {{3, 6}}, {}, 0, "moe.router_input_transform_grad",
             {{"kind", kind}, {"eps", 1e-6}}, {in(0), dy()}, {0}});
  // Top-k weights through their scores; the indices are constants.
  for (bool normalize : {false, true})
    g.check({std::string("topk_") + (normalize ? "normalized" : "raw"), "moe.topk_route",
             {{"k", int64_t(2)}, {"normalize", normalize}, {"norm_eps", 0.0}, {"scaling", 2.0}},
             {scores(5, 6, 23)}, {{5, 2}, {5, 2}}, {1}, 0, "moe.selection_grad",
             {{"normalize", normalize}, {"norm_eps", 0.0}, {"scaling", 2.0}}, {in(0), out(1), dy()},
             {0}, 1e-4});
  // SparseMixer's evaluation picks: each weight is its masked softmax gate,
  // whose gradient the op gives (the masks and picks are constants).
  g.check({"sparsemixer",
           "moe.sparsemixer_route",
           {{"epsilon", 0.3}, {"stream", int64_t(0)}},
           {randn({5, 6}, 24)},
           {{5, 2}, {5, 2}},
           {1},
           0,
           "moe.sparsemixer_grad",
           {{"epsilon", 0.3}},
           {in(0), out(1), dy()},
           {0},
           1e-4});
}

TEST(GradientCheck, ExpertAndDispatchOps) {
  GradientCheck g;
  Buffer tokens = Buffer::ints({6}, {0, 2, -1, 1, 2, 3});
  g.check({"combine", "moe.combine", {}, {randn({6, 4}, 30), randn({6}, 31), tokens}, {{4, 4}}, {}, 0,
           "moe.combine_grad", {}, {in(0), in(1), in(2), dy()}, {0, 1}});
  // Llama 4's routing weights on the experts' inputs: rows of [E, C] slots.
  g.check({"scale_rows",
           "moe.scale_rows",
           {},
           {randn({2, 3, 4}, 40), randn({2, 3}, 41)},
           {{2, 3, 4}},
           {},
           0,
           "moe.scale_rows_grad",
           {},
           {in(0), in(1), dy()},
           {0, 1}});
  Buffer sizes = Buffer::ints({3}, {2, 0, 3});
  std::vector<NamedAttr> grouped = {{"activation", std::string("silu")},
                                    {"operandSegmentSizes", std::vector<int64_t>{1, 1, 1, 1, 1}}};
  g.check({"grouped_ffn_dropless", "moe.grouped_ffn", grouped,
           {randn({6, 4}, 32), randn({3, 5, 4}, 33, 0.5f), randn({3, 4, 5}, 34, 0.5f),
            randn({3, 5, 4}, 35, 0.5f), sizes},
           {{6, 4}}, {}, 0, "moe.grouped_ffn_grad",
           {{"activation", std::string("silu")}, {"operandSegmentSizes", std::vector<int64_t>{1, 1, 1, 1, 1, 1}}},
           {in(0), in(1), in(2), in(3), in(4), dy()}, {0, 1, 2, 3}});
  g.check({"grouped_ffn_up", "moe.grouped_ffn_up", {{"operandSegmentSizes", std::vector<int64_t>{1, 1, 1, 1}}},
           {randn({6, 4}, 36), randn({3, 5, 4}, 37), randn({3, 5, 4}, 38), sizes}, {{6, 10}}, {}, 0,
           "moe.grouped_ffn_up_grad", {{"operandSegmentSizes", std::vector<int64_t>{1, 1, 1, 1, 1}}},
           {in(0), in(1), in(2), in(3), dy()}, {0, 1, 2}});
  g.check({"grouped_ffn_down", "moe.grouped_ffn_down", {{"activation", std::string("gelu")}, {"gated", true}},
           {randn({6, 10}, 39), randn({3, 4, 5}, 40), sizes}, {{6, 4}}, {}, 0, "moe.grouped_ffn_down_grad",
           {{"activation", std::string("gelu")}, {"gated", true}}, {in(0), in(1), in(2), dy()}, {0, 1}});
  g.check({"shared_experts_gated", "moe.shared_experts",
           {{"activation", std::string("silu")}, {"operandSegmentSizes", std::vector<int64_t>{1, 1, 1, 1, 1}}},
           {randn({3, 4}, 41), randn({6, 4}, 42, 0.5f), randn({4, 6}, 43, 0.5f), randn({6, 4}, 44, 0.5f),
            randn({1, 4}, 45)},
           {{3, 4}}, {}, 0, "moe.shared_experts_grad",
           {{"activation", std::string("silu")}, {"operandSegmentSizes", std::vector<int64_t>{1, 1, 1, 1, 1, 1}}},
           {in(0), in(1), in(2), in(3), in(4), dy()}, {0, 1, 2, 3, 4}});
  g.check({"lora_experts", "moe.lora_experts",
           {{"alpha", 4.0}, {"activation", std::string("gelu")}, {"operandSegmentSizes", std::vector<int64_t>{1, 2, 4, 0}}},
           {randn({2, 3, 4}, 46), randn({5, 4}, 47, 0.5f), randn({4, 5}, 48, 0.5f), randn({2, 2, 4}, 49),
            randn({2, 5, 2}, 50), randn({2, 2, 5}, 51), randn({2, 4, 2}, 52)},
           {{2, 3, 4}}, {}, 0, "moe.lora_experts_grad",
           {{"alpha", 4.0}, {"activation", std::string("gelu")}, {"operandSegmentSizes", std::vector<int64_t>{1, 2, 4, 0, 1}}},
           {in(0), in(1), in(2), in(3), in(4), in(5), in(6), dy()}, {0, 3, 4, 5, 6}});
  Buffer table = randn({7, 3}, 53);
  Buffer ids = Buffer::ints({2, 2}, {1, 5, 1, 0});
  g.check({"embedding", "moe.embedding", {}, {table, ids}, {{2, 2, 3}}, {}, 0, "moe.embedding_grad", {},
           {dy(), in(1)}, {0}});
}

TEST(GradientCheck, Losses) {
  GradientCheck g;
  Buffer indices = Buffer::ints({4, 2}, {0, 1, 2, 0, 1, 2, 0, 2});
  for (std::string kind : {"switch", "per_slot", "sequence"})
    g.check({"balance_" + kind, "moe.load_balancing_loss", {{"kind", kind}, {"seq_len", int64_t(2)}},
             {scores(4, 3, 60), indices}, {{}}, {}, 0, "moe.load_balancing_loss_grad",
             {{"kind", kind}, {"seq_len", int64_t(2)}}, {in(0), in(1), dy()}, {0, -1}, 1e-3});
  g.check({"z_loss", "moe.z_loss", {}, {randn({4, 3}, 61)}, {{}}, {}, 0, "moe.z_loss_grad", {}, {in(0), dy()}, {0}});
  for (double q : {1.0, 1.5})
    g.check({"entropy_q" + std::to_string(q), "moe.entropy_loss", {{"q", q}}, {scores(4, 3, 62)}, {{}}, {}, 0,
             "moe.entropy_loss_grad", {{"q", q}}, {in(0), dy(), }, {0}, 1e-3});
}

/// Runs one kernel on the CPU device and gives its status.
Status runKernel(const std::string &op, const std::vector<NamedAttr> &attrs,
                 std::vector<Buffer *> inputs, std::vector<Buffer *> outputs) {
  std::unique_ptr<cpu::CpuDevice> device = cpu::CpuDevice::create();
  const Kernel *kernel = device->findKernel(op);
  if (!kernel)
    return Status::error("no kernel for " + op);
  std::vector<TensorRef *> in, out;
  for (Buffer *b : inputs)
    in.push_back(&b->ref);
  for (Buffer *b : outputs)
    out.push_back(&b->ref);
  StepBuffer step;
  const plan::Step *s = step.build(op, attrs);
  return (*kernel)(StepContext(*s, device->defaultStream(), std::move(in), std::move(out)));
}

Buffer scalar(float value) {
  Buffer b = Buffer::floats({});
  b.f.assign(1, value);
  b.rebind();
  return b;
}

/// An error status whose message holds `text`.
void expectError(const Status &status, const std::string &text) {
  ASSERT_FALSE(status.isOk()) << "no error, expected one with: " << text;
  EXPECT_NE(status.message().find(text), std::string::npos) << status.message();
}

// A plan may feed a gradient kernel any index tensor its signature admits:
// a value out of range is an error naming the step and the value, as in the
// forward op, never a read or write out of bounds.
TEST(GradientKernels, RejectIndicesOutOfRange) {
  {
    Buffer logits = randn({2, 5}, 70), dloss = scalar(1.0f), dlogits = Buffer::floats({2, 5});
    for (int32_t bad : {5, -1}) {
      Buffer targets = Buffer::ints({2}, {0, bad});
      expectError(runKernel("moe.cross_entropy_grad", {}, {&logits, &targets, &dloss}, {&dlogits}),
                  "moe.cross_entropy_grad: target " + std::to_string(bad) +
                      " at position 1 is outside the vocabulary [0, 5)");
    }
  }
  {
    Buffer dy = randn({3, 2}, 71), tokens = Buffer::ints({3}, {0, 7, 1}),
           dtable = Buffer::floats({4, 2});
    expectError(runKernel("moe.embedding_grad", {}, {&dy, &tokens}, {&dtable}),
                "moe.embedding_grad: token id 7 at position 1 is outside the vocabulary [0, 4)");
  }
  {
    Buffer scores = Buffer::floats({2, 3}), dweights = randn({2, 2}, 72),
           dscores = Buffer::floats({2, 3});
    for (bool normalize : {false, true}) {
      std::vector<NamedAttr> attrs = {
          {"normalize", normalize}, {"norm_eps", 0.0}, {"scaling", 1.0}};
      Buffer padded = Buffer::ints({2, 2}, {0, -1, 2, 1});
      Status ok = runKernel("moe.selection_grad", attrs, {&scores, &padded, &dweights}, {&dscores});
      EXPECT_TRUE(ok.isOk()) << ok.message();
      Buffer indices = Buffer::ints({2, 2}, {0, -1, 3, 1});
      expectError(
          runKernel("moe.selection_grad", attrs, {&scores, &indices, &dweights}, {&dscores}),
          "moe.selection_grad: expert index 3 is outside [0, 3)");
    }
  }
  {
    Buffer scores = Buffer::floats({4, 3}), dloss = scalar(1.0f), dscores = Buffer::floats({4, 3});
    Buffer indices = Buffer::ints({4, 2}, {0, 1, -1, 2, 1, 0, 2, 3});
    for (std::string kind : {"switch", "per_slot", "sequence"})
      expectError(runKernel("moe.load_balancing_loss_grad",
                            {{"kind", kind}, {"seq_len", int64_t(2)}}, {&scores, &indices, &dloss},
                            {&dscores}),
                  "moe.load_balancing_loss_grad: expert index 3 is outside [0, 3)");
    // The forward pass refuses the same index.
    Buffer loss = scalar(0.0f);
    for (std::string kind : {"switch", "per_slot", "sequence"})
      expectError(runKernel("moe.load_balancing_loss", {{"kind", kind}, {"seq_len", int64_t(2)}},
                            {&scores, &indices}, {&loss}),
                  "moe.load_balancing_loss: expert index 3 is outside [0, 3)");
  }
  {
    Buffer slots = Buffer::ints({2, 2}, {0, 4, 1, 2}), dgates = randn({2, 2}, 73),
           dscores = Buffer::floats({3, 2});
    expectError(runKernel("moe.expert_choice_grad", {}, {&slots, &dgates}, {&dscores}),
                "moe.expert_choice_grad: slot token 4 is outside [0, 3)");
  }
  {
    Buffer dsorted = randn({4}, 74), dweights = Buffer::floats({2, 2});
    for (int32_t bad : {5, -2}) {
      Buffer indices = Buffer::ints({2, 2}, {0, 1, bad, 2});
      expectError(runKernel("moe.sort_by_expert_grad", {{"num_experts", int64_t(3)}},
                            {&indices, &dsorted}, {&dweights}),
                  "moe.sort_by_expert_grad: expert index " + std::to_string(bad) +
                      " is outside [0, 3)");
    }
  }
  {
    Buffer weights = randn({2, 2}, 75), dslots = randn({3, 2}, 76),
           dweights = Buffer::floats({2, 2});
    Buffer indices = Buffer::ints({2, 2}, {0, 1, 3, -1});
    for (std::string priority : {"position", "score"})
      expectError(
          runKernel("moe.assign_slots_grad",
                    {{"num_experts", int64_t(3)}, {"capacity", int64_t(2)}, {"priority", priority}},
                    {&weights, &indices, &dslots}, {&dweights}),
          "moe.assign_slots_grad: expert index 3 is outside [0, 3)");
  }
  {
    Buffer outputs = randn({4, 2}, 77), gates = randn({4}, 78), dy = randn({2, 2}, 79),
           doutputs = Buffer::floats({4, 2}), dgates = Buffer::floats({4});
    for (int32_t bad : {2, -2}) {
      Buffer slots = Buffer::ints({4}, {0, -1, 1, bad});
      expectError(
          runKernel("moe.combine_grad", {}, {&outputs, &gates, &slots, &dy}, {&doutputs, &dgates}),
          "moe.combine_grad: slot token " + std::to_string(bad) + " is outside [0, 2)");
    }
  }
  {
    Buffer scores = Buffer::floats({2, 3}), dscores = randn({2, 3}, 80),
           dlogits = Buffer::floats({2, 3});
    for (float tau : {0.0f, -1.0f, std::nanf("")}) {
      Buffer temperature = scalar(tau);
      expectError(
          runKernel("moe.gumbel_softmax_grad", {}, {&scores, &temperature, &dscores}, {&dlogits}),
          "moe.gumbel_softmax_grad: the Gumbel temperature must be positive");
    }
  }
}

} // namespace
