//===- ExpertLoad.cpp - how unevenly routing fills the experts -------------===//
#include "compiler/cost/ExpertLoad.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

namespace moec::cost {

double ExpertLoad::busiestRank(int64_t ep) const {
  int64_t experts = this->experts();
  if (ep <= 1 || experts == 0 || experts % ep != 0)
    return 1;
  double sum = 0;
  int64_t counted = 0;
  for (const std::vector<std::vector<double>> &step : steps)
    for (const std::vector<double> &tokens : step) {
      double total = std::accumulate(tokens.begin(), tokens.end(), 0.0);
      if (total <= 0)
        continue;
      double busiest = 0;
      for (int64_t rank = 0; rank < ep; ++rank) {
        auto first = tokens.begin() + rank * (experts / ep);
        busiest = std::max(busiest, std::accumulate(first, first + experts / ep, 0.0));
      }
      sum += busiest / (total / double(ep));
      ++counted;
    }
  return counted ? sum / double(counted) : 1.0;
}

std::string ExpertLoad::mismatch(const rt::LoadedPlan &plan, const plan::Function &function) const {
  int64_t layers = 0, experts = 0;
  if (function.steps())
    for (const plan::Step *step : *function.steps())
      if (step->op()->str() == "moe.routing_stats" && step->outputs() &&
          step->outputs()->size() > 0) {
        ++layers;
        experts = plan.describe(step->outputs()->Get(0)).numel();
      }
  if (layers == this->layers() && experts == this->experts())
    return "";
  return "the log has " + std::to_string(this->layers()) + " MoE layers of " +
         std::to_string(this->experts()) + " experts, the plan " + std::to_string(layers) + " of " +
         std::to_string(experts) + ": a log of another model";
}

std::optional<ExpertLoad> readExpertLoad(const std::string &path, std::string &error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read the training log '" + path + "'";
    return std::nullopt;
  }
  ExpertLoad load;
  std::optional<std::vector<std::vector<double>>> firstStep; // step 0's, kept apart
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    auto where = [&] { return path + ":" + std::to_string(number) + ": "; };
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) {
      error = where() + "not a JSON object (a moe-run --log line)";
      return std::nullopt;
    }
    auto layers = record.find("layers");
    if (layers == record.end())
      continue; // an evaluation or other record
    if (!layers->is_array() || layers->empty()) {
      error = where() + "'layers' is not a list of MoE layers";
      return std::nullopt;
    }
    std::vector<std::vector<double>> step;
    for (const nlohmann::json &layer : *layers) {
      auto tokens = layer.is_object() ? layer.find("expert_tokens") : layer.end();
      if (!layer.is_object() || tokens == layer.end() || !tokens->is_array() || tokens->empty()) {
        error = where() + "a layer without 'expert_tokens' (a list of token counts)";
        return std::nullopt;
      }
      std::vector<double> counts;
      for (const nlohmann::json &count : *tokens) {
        // Counts beyond 2^53 are not token counts (and their sums lose
        // their meaning).
        if (!count.is_number() || !(count.get<double>() >= 0) || count.get<double>() > 0x1p53) {
          error = where() + "'expert_tokens' holds something other than a token count";
          return std::nullopt;
        }
        counts.push_back(count.get<double>());
      }
      step.push_back(std::move(counts));
    }
    const std::vector<std::vector<double>> &shape = !load.steps.empty() ? load.steps[0]
                                                    : firstStep         ? *firstStep
                                                                        : step;
    if (step.size() != shape.size() ||
        !std::equal(step.begin(), step.end(), shape.begin(),
                    [](const auto &a, const auto &b) { return a.size() == b.size(); })) {
      error = where() + "its layers or experts differ from the first step's";
      return std::nullopt;
    }
    // Step 0's router is untrained; later ones say how training goes.
    auto stepNumber = record.find("step");
    if (stepNumber != record.end() && stepNumber->is_number() && stepNumber->get<double>() == 0)
      firstStep = std::move(step);
    else
      load.steps.push_back(std::move(step));
  }
  if (load.steps.empty() && firstStep)
    load.steps.push_back(std::move(*firstStep));
  if (load.steps.empty()) {
    error = path + ": no step with 'expert_tokens' (write one with moe-run --log)";
    return std::nullopt;
  }
  return load;
}

} // namespace moec::cost
