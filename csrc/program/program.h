// Op programs (see autobert_ext/program.py, the contract): decoding, validation and register
// planning. Torch-free; errors are returned as messages so each binding can raise them its own way.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace autobert::program {

// Opcode numbers: part of the ABI shared with autobert_ext.program.OPCODES (append only).
enum Op : int32_t {
  kCopy = 0, kConst, kNeg, kAbs, kSquare, kMulc, kAddc, kLogsigmoid, kSoftsign, kSqrt, kLog, kExp,
  kSigmoid, kTanh, kRelu, kGelu, kSoftplus, kAdd, kSub, kMul, kMax, kMin, kDiv, kRecip, kRsqrt,
  kSign, kSignp, kGt, kEq, kGtc, kLtc, kDgelu, kExpRaw, kFma, kNumOps
};

// Number of register sources of each opcode (same table as OPCODES[i].arity).
inline int arity(int32_t op) {
  static const int8_t table[kNumOps] = {1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                        2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 2};
  return (op >= 0 && op < kNumOps) ? table[op] : -1;
}

struct Instr {
  int32_t op, dst, a, b;
  double imm;
};

struct Program {
  int32_t n_inputs = 0;
  std::vector<Instr> instrs;
  std::vector<int32_t> outputs;
  int32_t n_regs() const { return n_inputs + static_cast<int32_t>(instrs.size()); }
};

// Hard limits keep hostile encodings from exhausting memory (real programs have < 100 instructions).
constexpr int64_t kMaxInputs = 1 << 12;
constexpr int64_t kMaxInstrs = 1 << 16;

// Decodes autobert_ext.program.encode's (ints, floats) into *out. Returns "" when valid, else a
// message naming the offending field (the same rules as Program.validate in Python).
inline std::string decode(const std::vector<int64_t>& ints, const std::vector<double>& floats, Program* out) {
  if (ints.size() < 3) return "encoding too short: " + std::to_string(ints.size()) + " ints, need at least 3";
  const int64_t n_in = ints[0], n_ins = ints[1], n_out = ints[2];
  if (n_in < 0 || n_in > kMaxInputs) return "n_inputs must be in 0.." + std::to_string(kMaxInputs) + ", got " + std::to_string(n_in);
  if (n_ins < 0 || n_ins > kMaxInstrs) return "n_instrs must be in 0.." + std::to_string(kMaxInstrs) + ", got " + std::to_string(n_ins);
  if (n_out < 0 || n_out > kMaxInstrs) return "n_outputs must be in 0.." + std::to_string(kMaxInstrs) + ", got " + std::to_string(n_out);
  const int64_t want = 3 + 4 * n_ins + n_out;
  if (static_cast<int64_t>(ints.size()) != want || static_cast<int64_t>(floats.size()) != n_ins) {
    return "encoding has " + std::to_string(ints.size()) + " ints / " + std::to_string(floats.size()) +
           " floats, expected " + std::to_string(want) + " / " + std::to_string(n_ins);
  }
  Program p;
  p.n_inputs = static_cast<int32_t>(n_in);
  p.instrs.reserve(n_ins);
  for (int64_t i = 0; i < n_ins; ++i) {
    const int64_t* w = ints.data() + 3 + 4 * i;
    const int64_t op = w[0], dst = w[1];
    const std::string where = "instruction " + std::to_string(i);
    if (op < 0 || op >= kNumOps) return where + " has unknown opcode " + std::to_string(op);
    if (dst != n_in + i) return where + " writes r" + std::to_string(dst) + ", expected r" + std::to_string(n_in + i) + " (SSA)";
    const int ar = arity(static_cast<int32_t>(op));
    for (int s = 0; s < ar; ++s) {
      const int64_t src = w[2 + s];
      if (src < 0 || src >= dst) {
        return where + " (opcode " + std::to_string(op) + ") reads r" + std::to_string(src) + " in slot " +
               (s == 0 ? "a" : "b") + ", which is not defined before r" + std::to_string(dst);
      }
    }
    // Unused source slots are normalised to -1 so later passes never follow them.
    p.instrs.push_back({static_cast<int32_t>(op), static_cast<int32_t>(dst), ar >= 1 ? static_cast<int32_t>(w[2]) : -1,
                        ar >= 2 ? static_cast<int32_t>(w[3]) : -1, floats[i]});
  }
  const int64_t n_regs = n_in + n_ins;
  for (int64_t j = 0; j < n_out; ++j) {
    const int64_t r = ints[3 + 4 * n_ins + j];
    if (r < 0 || r >= n_regs) return "output register r" + std::to_string(r) + " is out of range 0.." + std::to_string(n_regs - 1);
    p.outputs.push_back(static_cast<int32_t>(r));
  }
  *out = std::move(p);
  return "";
}

// Checks a decoded program has the arity a kernel slot expects ("" when it does).
inline std::string expect_arity(const Program& p, int64_t n_inputs, int64_t n_outputs) {
  if (p.n_inputs != n_inputs || static_cast<int64_t>(p.outputs.size()) != n_outputs) {
    return "expected a program with " + std::to_string(n_inputs) + " inputs and " + std::to_string(n_outputs) +
           " outputs, got " + std::to_string(p.n_inputs) + " inputs and " + std::to_string(p.outputs.size()) + " outputs";
  }
  return "";
}

// Where each register lives while a block is evaluated: an input pointer, an output pointer (the
// first time an instruction result is listed as an output, it is computed straight into that
// output), or a scratch slot reused once its register is dead (keeps the working set in L1).
struct Plan {
  enum Kind : int8_t { kInput, kOutput, kSlot };
  struct Loc {
    Kind kind;
    int32_t index;  // input number, output number, or slot number
  };
  std::vector<Loc> loc;                                 // per register
  std::vector<std::pair<int32_t, int32_t>> copies;      // (output number, register) copied at the end
  int32_t n_slots = 0;

  explicit Plan(const Program& p) {
    const int32_t n = p.n_regs();
    loc.assign(n, Loc{kSlot, -1});
    for (int32_t r = 0; r < p.n_inputs; ++r) loc[r] = {kInput, r};
    std::vector<int32_t> last_use(n, -1);
    for (int32_t i = 0; i < static_cast<int32_t>(p.instrs.size()); ++i) {
      const Instr& ins = p.instrs[i];
      if (ins.a >= 0) last_use[ins.a] = i;
      if (ins.b >= 0) last_use[ins.b] = i;
    }
    std::vector<bool> bound(n, false);
    for (int32_t j = 0; j < static_cast<int32_t>(p.outputs.size()); ++j) {
      const int32_t r = p.outputs[j];
      if (r >= p.n_inputs && !bound[r]) {
        bound[r] = true;
        loc[r] = {kOutput, j};
      } else {
        copies.emplace_back(j, r);
      }
    }
    // Registers copied to outputs at the end must stay live to the end.
    for (auto& c : copies) last_use[c.second] = static_cast<int32_t>(p.instrs.size());
    std::vector<int32_t> free_slots;
    std::vector<bool> freed(n, false);
    for (int32_t i = 0; i < static_cast<int32_t>(p.instrs.size()); ++i) {
      const Instr& ins = p.instrs[i];
      // Sources dying here free their slot before dst is placed: dst may then reuse it, which is
      // safe because every opcode reads element k before writing element k.
      for (int32_t src : {ins.a, ins.b}) {
        if (src >= 0 && last_use[src] == i && loc[src].kind == kSlot && !freed[src]) {
          freed[src] = true;
          free_slots.push_back(loc[src].index);
        }
      }
      if (loc[ins.dst].kind == kSlot) {
        int32_t s;
        if (!free_slots.empty()) {
          s = free_slots.back();
          free_slots.pop_back();
        } else {
          s = n_slots++;
        }
        loc[ins.dst].index = s;
        if (last_use[ins.dst] < 0) {  // dead result: its slot is free again right away
          freed[ins.dst] = true;
          free_slots.push_back(s);
        }
      }
    }
  }
};

}  // namespace autobert::program
