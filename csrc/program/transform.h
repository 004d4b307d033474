// Program transformation for the attention backward: a derivative program ds = f_bwd(s, g)
// mostly recomputes values of s alone (f'(s) and f's own intermediates), which the backward
// already evaluates once for t = f(s). split_backward moves that s-only part into one "merged"
// program together with f (common subexpressions shared, dead code dropped), leaving a small
// program that only combines those values with g.
#pragma once
#include <cstdint>
#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "program/program.h"

namespace autobert::program {

struct BackwardSplit {
  Program merged;                  // 1 input s -> [t = f(s), values of boundary regs that are not s]
  Program post;                    // inputs (boundary values..., g) -> ds
  std::vector<int32_t> boundary;   // f_bwd registers feeding `post`; register 0 means s itself
  std::vector<int32_t> merged_out; // per boundary entry: index among merged's outputs, or -1 for s
};

namespace detail {
inline bool commutative(int32_t op) { return op == kAdd || op == kMul || op == kMax || op == kMin || op == kEq; }
}  // namespace detail

// f: 1 input -> 1 output; f_bwd: 2 inputs (s, g) -> 1 output. Both already validated.
inline BackwardSplit split_backward(const Program& f, const Program& f_bwd) {
  BackwardSplit out;
  const int32_t nb = f_bwd.n_regs();
  // Which f_bwd registers depend on g (register 1)?
  std::vector<bool> on_g(nb, false);
  on_g[1] = true;
  for (const Instr& ins : f_bwd.instrs) {
    on_g[ins.dst] = (ins.a >= 0 && on_g[ins.a]) || (ins.b >= 0 && on_g[ins.b]);
  }
  // Boundary: s-only registers read by g-dependent instructions (or the output itself when it
  // does not depend on g at all). Constants are re-emitted in `post` instead of becoming tiles.
  std::vector<bool> is_boundary(nb, false), const_in_post(nb, false);
  auto is_const = [&](int32_t r) { return r >= 2 && f_bwd.instrs[r - 2].op == kConst; };
  for (const Instr& ins : f_bwd.instrs) {
    if (!on_g[ins.dst]) continue;
    for (int32_t src : {ins.a, ins.b}) {
      if (src >= 0 && !on_g[src]) (is_const(src) ? const_in_post : is_boundary)[src] = true;
    }
  }
  const int32_t fb_out = f_bwd.outputs[0];
  if (!on_g[fb_out]) is_boundary[fb_out] = true;
  // s-only registers needed to compute the boundary (dead code elimination, walking backwards).
  std::vector<bool> needed(is_boundary);
  for (int32_t i = static_cast<int32_t>(f_bwd.instrs.size()) - 1; i >= 0; --i) {
    const Instr& ins = f_bwd.instrs[i];
    if (!needed[ins.dst] || on_g[ins.dst]) continue;
    for (int32_t src : {ins.a, ins.b}) {
      if (src >= 0) needed[src] = true;
    }
  }

  // merged = f's instructions, then the needed s-only instructions of f_bwd, sharing equal ones.
  Program& m = out.merged;
  m.n_inputs = 1;
  m.instrs = f.instrs;
  using Key = std::tuple<int32_t, int32_t, int32_t, uint64_t>;
  std::map<Key, int32_t> seen;
  auto key_of = [](const Instr& ins) {
    int32_t a = ins.a, b = ins.b;
    if (detail::commutative(ins.op) && a > b) std::swap(a, b);
    uint64_t bits;
    std::memcpy(&bits, &ins.imm, sizeof(bits));
    return Key{ins.op, a, b, bits};
  };
  for (const Instr& ins : m.instrs) seen.emplace(key_of(ins), ins.dst);
  std::vector<int32_t> to_merged(nb, -1);
  to_merged[0] = 0;  // s
  for (const Instr& ins : f_bwd.instrs) {
    if (on_g[ins.dst] || !needed[ins.dst]) continue;
    Instr mi = ins;
    mi.a = ins.a >= 0 ? to_merged[ins.a] : -1;
    mi.b = ins.b >= 0 ? to_merged[ins.b] : -1;
    auto it = seen.find(key_of(mi));
    if (it != seen.end()) {
      to_merged[ins.dst] = it->second;
      continue;
    }
    mi.dst = m.n_regs();
    m.instrs.push_back(mi);
    seen.emplace(key_of(mi), mi.dst);
    to_merged[ins.dst] = mi.dst;
  }
  m.outputs = {f.outputs[0]};
  for (int32_t r = 0; r < nb; ++r) {
    if (!is_boundary[r]) continue;
    out.boundary.push_back(r);
    if (r == 0) {
      out.merged_out.push_back(-1);
    } else {
      out.merged_out.push_back(static_cast<int32_t>(m.outputs.size()));
      m.outputs.push_back(to_merged[r]);
    }
  }

  // post: inputs are the boundary values then g; the g-dependent instructions renumbered.
  Program& p = out.post;
  const int32_t k = static_cast<int32_t>(out.boundary.size());
  p.n_inputs = k + 1;
  std::vector<int32_t> to_post(nb, -1);
  for (int32_t j = 0; j < k; ++j) to_post[out.boundary[j]] = j;
  to_post[1] = k;  // g
  for (const Instr& ins : f_bwd.instrs) {
    if (!on_g[ins.dst] && !const_in_post[ins.dst]) continue;
    Instr pi = ins;
    pi.a = ins.a >= 0 ? to_post[ins.a] : -1;
    pi.b = ins.b >= 0 ? to_post[ins.b] : -1;
    pi.dst = p.n_regs();
    p.instrs.push_back(pi);
    to_post[ins.dst] = pi.dst;
  }
  p.outputs = {to_post[fb_out]};
  return out;
}

}  // namespace autobert::program
