//===- ActivationCode.cpp - CUDA expressions of the activations ----------===//
#include "compiler/codegen/ActivationCode.h"

namespace moec::codegen {

std::string activationCode(moe::Activation kind, llvm::StringRef x) {
  std::string v = x.str();
  switch (kind) {
  case moe::Activation::relu:
    return "(" + v + " > 0.0f ? " + v + " : 0.0f)";
  case moe::Activation::gelu:
    return "(0.5f * " + v + " * (1.0f + erff(" + v + " * 0.70710678118654752f)))";
  case moe::Activation::gelu_tanh:
    return "(0.5f * " + v + " * (1.0f + tanhf(0.7978845608028654f * (" + v + " + 0.044715f * " +
           v + " * " + v + " * " + v + "))))";
  case moe::Activation::silu:
    return "(" + v + " / (1.0f + expf(-" + v + ")))";
  case moe::Activation::sigmoid:
    return "(1.0f / (1.0f + expf(-" + v + ")))";
  }
  return v;
}

std::string activationGradCode(moe::Activation kind, llvm::StringRef x) {
  std::string v = x.str();
  switch (kind) {
  case moe::Activation::relu:
    return "(" + v + " > 0.0f ? 1.0f : 0.0f)";
  case moe::Activation::gelu:
    return "moec_gelu_grad(" + v + ")";
  case moe::Activation::gelu_tanh:
    return "moec_gelu_tanh_grad(" + v + ")";
  case moe::Activation::silu:
    return "moec_silu_grad(" + v + ")";
  case moe::Activation::sigmoid:
    return "moec_sigmoid_grad(" + v + ")";
  }
  return "1.0f";
}

} // namespace moec::codegen
