//===- Report.cpp - explored strategies as a table, JSON or an SVG plot ----===//
#include "compiler/explore/Report.h"

#include "runtime/core/HumanBytes.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace moec::explore {
namespace {

std::string format(const char *pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string milliseconds(double seconds) { return format("%.3f", seconds * 1e3); }

std::string jsonString(const std::string &text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += format("\\u%04x", static_cast<unsigned char>(c));
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string xmlText(const std::string &text) {
  std::string out;
  for (char c : text)
    out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}
} // namespace

void printTable(std::ostream &os, const std::vector<Outcome> &outcomes, const ReportContext &c) {
  std::vector<size_t> ranked = rankOutcomes(outcomes);
  std::set<size_t> front;
  for (size_t i : paretoFront(outcomes))
    front.insert(i);
  const cost::Cluster &cluster = *c.cluster;
  os << c.model << " on " << c.world << " x " << cluster.device.name << " (" << cluster.name << ", "
     << cluster.nodesFor(c.world) << " node" << (cluster.nodesFor(c.world) == 1 ? "" : "s")
     << "): " << ranked.size() << " of " << outcomes.size() << " strategies fit\n";
  if (c.load)
    os << "routing as " << c.loadLog << " records it (" << c.load->steps.size()
       << " steps): expert parallelism waits for the busiest rank\n";
  else
    os << "routing assumed balanced (--expert-load LOG reads a training log's)\n";
  if (ranked.empty()) {
    os << "no strategy fits\n";
  } else {
    char line[256];
    std::snprintf(line, sizeof line, "%4s  %10s  %12s  %6s  %10s  %10s  %s\n", "rank", "step ms",
                  "tokens/s", "MFU", "mem/rank", "comm/step",
                  "strategy (* Pareto: time vs memory)");
    os << line;
    size_t shown = c.rows ? std::min(c.rows, ranked.size()) : ranked.size();
    for (size_t r = 0; r < shown; ++r) {
      const Outcome &o = outcomes[ranked[r]];
      const cost::PlanCost &p = *o.cost;
      std::snprintf(line, sizeof line, "%4zu  %10s  %12.0f  %5.1f%%  %10s  %10s  %s%s\n", r + 1,
                    milliseconds(p.step.seconds).c_str(), p.tokensPerSecond(), 100 * p.mfu(cluster),
                    rt::humanBytes(p.memory.total()).c_str(), rt::humanBytes(p.step.sent).c_str(),
                    front.count(ranked[r]) ? "* " : "  ", o.strategy.name().c_str());
      os << line;
    }
    if (shown < ranked.size())
      os << "(" << ranked.size() - shown << " slower strategies not shown; --top 0 shows all)\n";
    os << "\ncommands:\n";
    for (size_t r = 0; r < shown; ++r)
      os << format("%4.0f  ", double(r + 1)) << outcomes[ranked[r]].command() << "\n";
  }
  size_t dropped = outcomes.size() - ranked.size();
  if (dropped) {
    os << "\ndropped:\n";
    for (const Outcome &o : outcomes)
      if (!o.cost) {
        os << "  " << o.strategy.name() << ": " << o.dropped;
        if (const std::optional<cost::PlanCost> &p = o.oversized)
          os << "; with room, a step would take " << milliseconds(p->step.seconds) << " ms ("
             << format("%.0f", p->tokensPerSecond()) << " tokens/s, MFU "
             << format("%.1f", 100 * p->mfu(cluster)) << "%)";
        os << "\n";
      }
  }
}

void printJson(std::ostream &os, const std::vector<Outcome> &outcomes, const ReportContext &c) {
  std::vector<size_t> order = rankOutcomes(outcomes);
  std::set<size_t> front, listed(order.begin(), order.end());
  for (size_t i : paretoFront(outcomes))
    front.insert(i);
  for (size_t i = 0; i < outcomes.size(); ++i)
    if (!listed.count(i))
      order.push_back(i);
  const cost::Cluster &cluster = *c.cluster;
  os << "{\"model\": " << jsonString(c.model) << ", \"cluster\": " << jsonString(cluster.name)
     << ", \"world\": " << c.world << ", \"strategies\": [";
  for (size_t r = 0; r < order.size(); ++r) {
    const Outcome &o = outcomes[order[r]];
    const Strategy &s = o.strategy;
    os << (r ? ",\n  " : "\n  ") << "{\"name\": " << jsonString(s.name())
       << ", \"fusion\": " << jsonString(moe::stringifyFusionStrategy(s.fusion).str())
       << ", \"dp\": " << s.mesh.dp << ", \"ep\": " << s.mesh.ep << ", \"zero\": " << s.zero
       << ", \"overlap_chunks\": " << s.overlapChunks
       << ", \"precision\": " << jsonString(moe::stringifyPrecision(s.precision).str())
       << ", \"capacity_factor\": "
       << (s.capacityFactor ? format("%.17g", *s.capacityFactor) : std::string("null"))
       << ", \"command\": " << jsonString(o.command());
    if (const std::optional<cost::PlanCost> &p = o.cost) {
      os << ", \"rank\": " << r + 1
         << ", \"pareto\": " << (front.count(order[r]) ? "true" : "false")
         << ", \"step_seconds\": " << format("%.9g", p->step.seconds)
         << ", \"compute_seconds\": " << format("%.9g", p->step.computeSeconds)
         << ", \"collective_seconds\": " << format("%.9g", p->step.collectiveSeconds)
         << ", \"tokens_per_second\": " << format("%.9g", p->tokensPerSecond())
         << ", \"mfu\": " << format("%.6g", p->mfu(cluster))
         << ", \"gemm_flops_per_rank\": " << format("%.9g", p->step.gemmFlops)
         << ", \"bytes_per_rank\": " << format("%.9g", p->step.bytes)
         << ", \"comm_bytes_per_rank\": " << format("%.9g", p->step.sent)
         << ", \"launches\": " << p->step.launches
         << ", \"memory_per_rank\": {\"parameters\": " << format("%.17g", p->memory.parameters)
         << ", \"optimizer_state\": " << format("%.17g", p->memory.state)
         << ", \"arena\": " << format("%.17g", p->memory.arena)
         << ", \"total\": " << format("%.17g", p->memory.total()) << "}";
    } else {
      os << ", \"dropped\": " << jsonString(o.dropped);
      if (const std::optional<cost::PlanCost> &p = o.oversized)
        os << ", \"if_it_fit\": {\"step_seconds\": " << format("%.9g", p->step.seconds)
           << ", \"tokens_per_second\": " << format("%.9g", p->tokensPerSecond())
           << ", \"mfu\": " << format("%.6g", p->mfu(cluster))
           << ", \"memory_per_rank\": " << format("%.17g", p->memory.total()) << "}";
    }
    os << "}";
  }
  os << "\n]}\n";
}

void writeSvgPlot(std::ostream &os, const std::vector<Outcome> &outcomes, const ReportContext &c) {
  std::vector<size_t> points = rankOutcomes(outcomes), front = paretoFront(outcomes);
  const double width = 800, height = 520, left = 90, right = 30, top = 50, bottom = 60;
  double xMax = 0, yMax = 0;
  for (size_t i : points) {
    xMax = std::max(xMax, outcomes[i].cost->memory.total());
    yMax = std::max(yMax, outcomes[i].cost->step.seconds * 1e3);
  }
  xMax = xMax > 0 ? xMax * 1.08 : 1;
  yMax = yMax > 0 ? yMax * 1.08 : 1;
  auto x = [&](double bytes) { return left + bytes / xMax * (width - left - right); };
  auto y = [&](double ms) { return height - bottom - ms / yMax * (height - top - bottom); };
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  os << "<text x=\"" << left << "\" y=\"24\" font-size=\"15\">"
     << xmlText(c.model + ": predicted step time vs memory per rank, " + std::to_string(c.world) +
                " x " + c.cluster->device.name)
     << "</text>\n";
  // Axes with five ticks each.
  os << "<g stroke=\"black\"><line x1=\"" << left << "\" y1=\"" << height - bottom << "\" x2=\""
     << width - right << "\" y2=\"" << height - bottom << "\"/><line x1=\"" << left << "\" y1=\""
     << top << "\" x2=\"" << left << "\" y2=\"" << height - bottom << "\"/></g>\n";
  for (int t = 0; t <= 5; ++t) {
    double bytes = xMax * t / 5, ms = yMax * t / 5;
    os << "<text x=\"" << x(bytes) << "\" y=\"" << height - bottom + 18
       << "\" text-anchor=\"middle\">" << xmlText(rt::humanBytes(bytes)) << "</text>\n";
    os << "<text x=\"" << left - 8 << "\" y=\"" << y(ms) + 4 << "\" text-anchor=\"end\">"
       << format("%.3g", ms) << "</text>\n";
  }
  os << "<text x=\"" << (left + width - right) / 2 << "\" y=\"" << height - 15
     << "\" text-anchor=\"middle\">memory per rank</text>\n";
  os << "<text transform=\"translate(22," << (top + height - bottom) / 2
     << ") rotate(-90)\" text-anchor=\"middle\">step time (ms)</text>\n";
  std::set<size_t> onFront(front.begin(), front.end());
  for (size_t i : points) {
    const cost::PlanCost &p = *outcomes[i].cost;
    os << "<circle cx=\"" << x(p.memory.total()) << "\" cy=\"" << y(p.step.seconds * 1e3)
       << "\" r=\"4\" fill=\"" << (onFront.count(i) ? "#d62728" : "#1f77b4")
       << "\" fill-opacity=\"0.7\"><title>" << xmlText(outcomes[i].strategy.name())
       << "</title></circle>\n";
  }
  if (!front.empty()) {
    os << "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"";
    for (size_t i : front)
      os << x(outcomes[i].cost->memory.total()) << "," << y(outcomes[i].cost->step.seconds * 1e3)
         << " ";
    os << "\"/>\n";
    for (size_t i : front)
      os << "<text x=\"" << x(outcomes[i].cost->memory.total()) + 6 << "\" y=\""
         << y(outcomes[i].cost->step.seconds * 1e3) - 6 << "\" fill=\"#d62728\" font-size=\"10\">"
         << xmlText(outcomes[i].strategy.name()) << "</text>\n";
  }
  os << "<text x=\"" << width - right << "\" y=\"" << top - 8
     << "\" text-anchor=\"end\" fill=\"#d62728\">red: the Pareto front</text>\n";
  os << "</svg>\n";
}

} // namespace moec::explore
