// Hyperparameters.h - device buffers for a function's hyperparameter inputs.
#ifndef MOEC_RUNTIME_CORE_HYPERPARAMETERS_H
#define MOEC_RUNTIME_CORE_HYPERPARAMETERS_H

#include "runtime/core/Executor.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moec::rt {

/// Places every hyperparameter input of `ex`'s function on `device` and
/// binds it: the value `given` names (by input name), else the one compiled
/// into the plan. The buffers must outlive the executor's runs.
StatusOr<std::vector<std::unique_ptr<hal::Buffer>>>
bindHyperparameters(Executor &ex, hal::Device &device,
                    const std::map<std::string, double> &given = {});

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_HYPERPARAMETERS_H
