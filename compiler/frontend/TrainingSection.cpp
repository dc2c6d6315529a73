//===- TrainingSection.cpp - the `training` section of a description ------===//
#include "compiler/frontend/TrainingSection.h"

namespace moec::frontend {

void readTrainingSection(MappingReader &r, TrainingConfig &t) {
  r.read("batch_size", t.batchSize);
  r.read("seq_len", t.seqLen);
  r.read("seed", t.seed);
  r.read("grad_clip", t.gradClip);
  r.read("mtp_loss_weight", t.mtpLossWeight);
  r.section("optimizer", [&](MappingReader &o) {
    o.readChoice("kind", t.optimizer.kind, {"adamw", "sgd"});
    o.read("lr", t.optimizer.lr);
    o.read("beta1", t.optimizer.beta1);
    o.read("beta2", t.optimizer.beta2);
    o.read("eps", t.optimizer.eps);
    o.read("weight_decay", t.optimizer.weightDecay);
    o.read("momentum", t.optimizer.momentum);
  });
  r.section("schedule", [&](MappingReader &s) {
    s.readChoice("kind", t.schedule.kind, {"constant", "cosine", "linear"});
    s.read("warmup_steps", t.schedule.warmupSteps);
    s.read("total_steps", t.schedule.totalSteps);
    s.read("min_lr_ratio", t.schedule.minLrRatio);
  });
}

} // namespace moec::frontend
