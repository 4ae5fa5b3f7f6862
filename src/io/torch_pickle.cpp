// A pickle machine for torch.save'd state_dicts and LibTorch archives: the opcodes of protocols 2-5
// that dicts, tuples, strings, numbers, tensor rebuilds and TorchScript objects use, with every
// length checked against the input.
#include "io/torch_pickle.h"

#include <ATen/ATen.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "core/error.h"
#include "io/torch_zip.h"

namespace shrink::io {

using core::cat;

namespace {

// Deeper nesting than a state_dict ever needs means a hostile file.
constexpr size_t kMaxStack = 1 << 20;
// Submodules nest this deep at most (as the .h5 reader's groups do).
constexpr int kMaxObjectDepth = 64;

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kObject };
  Kind kind = Kind::kNone;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // a string, a global as "module.name", or an object's class
  std::vector<ValuePtr> items;
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;  // a dict, or an object's attributes
  // A storage: its record key in `text`, dtype and element count; read when a tensor needs it.
  at::ScalarType dtype = at::kFloat;
  int64_t numel = 0;
  // A tensor: a view of `items[0]` (a storage), checked and materialised once it has a name.
  std::vector<int64_t> sizes, strides;
  int64_t offset = 0;
};

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kTuple:
      return "tuple";
    case Value::Kind::kList:
      return "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kGlobal:
      return "class or function";
    case Value::Kind::kStorage:
      return "storage";
    case Value::Kind::kTensor:
      return "tensor";
    case Value::Kind::kObject:
      return "object";
  }
  return "?";
}

at::ScalarType storage_dtype(const std::string& global) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},       {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},       {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  const auto it = types.find(global);
  if (it == types.end()) throw core::Error(cat("unsupported storage type ", global));
  return it->second;
}

// Before set_(): given a view past its storage, set_ would grow the storage to fit.
void check_view(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides, int64_t offset,
                int64_t storage_numel) {
  int64_t last = offset;
  bool empty = false, bad = offset < 0;
  for (size_t d = 0; d < sizes.size() && !bad; ++d) {
    int64_t reach = 0;
    empty = empty || sizes[d] == 0;
    bad = sizes[d] < 0 || strides[d] < 0 ||
          (sizes[d] > 0 &&
           (__builtin_mul_overflow(sizes[d] - 1, strides[d], &reach) || __builtin_add_overflow(last, reach, &last)));
  }
  if (bad || (!empty && last >= storage_numel)) {
    throw core::Error(cat("tensor of shape ", c10::IntArrayRef(sizes), ", strides ", c10::IntArrayRef(strides),
                          " and offset ", offset, " reaches past its storage of ", storage_numel,
                          " elements (corrupt file?)"));
  }
}

// Reads storages from the archive once each, checks every tensor against its storage, and builds it.
class Materialiser {
 public:
  Materialiser(std::string_view archive, const std::map<std::string, ZipRecord>& records, std::string data_prefix)
      : archive_(archive), records_(records), data_prefix_(std::move(data_prefix)) {}

  at::Tensor tensor(const Value& v) {
    const Value& s = *v.items.at(0);
    auto& storage = storages_[s.text];
    if (!storage.defined()) {
      const auto it = records_.find(data_prefix_ + s.text);
      if (it == records_.end() || it->second.deflated) {
        throw core::Error(cat("its storage '", s.text, "' has no stored record in the archive"));
      }
      const uint64_t item = c10::elementSize(s.dtype);
      if (s.numel < 0 || static_cast<uint64_t>(s.numel) > it->second.size / item) {
        throw core::Error(cat("its storage '", s.text, "' declares ", s.numel, " elements but its record holds ",
                              it->second.size, " bytes (truncated or corrupt)"));
      }
      storage = at::empty({s.numel}, at::TensorOptions().dtype(s.dtype));
      if (s.numel > 0)
        std::memcpy(storage.data_ptr(), archive_.data() + it->second.offset, static_cast<size_t>(s.numel) * item);
    } else if (storage.scalar_type() != s.dtype) {
      throw core::Error(cat("its storage '", s.text, "' is used with two dtypes"));
    }
    check_view(v.sizes, v.strides, v.offset, storage.numel());
    return at::empty({0}, storage.options()).set_(storage.storage(), v.offset, v.sizes, v.strides);
  }

 private:
  std::string_view archive_;
  const std::map<std::string, ZipRecord>& records_;
  std::string data_prefix_;
  std::map<std::string, at::Tensor> storages_;
};

class Machine {
 public:
  explicit Machine(std::string_view pickle) : in_(pickle) {}

  ValuePtr run() {
    for (;;) {
      const auto op = static_cast<unsigned char>(take(1)[0]);
      switch (op) {
        case 0x80:
          take(1);
          break;  // PROTO
        case 0x95:
          take(8);
          break;  // FRAME: lengths are checked per read anyway
        case '.':
          return pop();  // STOP
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case ')':
          push(make(Value::Kind::kTuple));
          break;  // EMPTY_TUPLE
        case ']':
          push(make(Value::Kind::kList));
          break;  // EMPTY_LIST
        case '}':
          push(make(Value::Kind::kDict));
          break;  // EMPTY_DICT
        case 'N':
          push(make(Value::Kind::kNone));
          break;
        case 0x88:
          push(boolean(true));
          break;  // NEWTRUE
        case 0x89:
          push(boolean(false));
          break;  // NEWFALSE
        case 'K':
          push(integer(static_cast<int64_t>(le(1))));
          break;  // BININT1
        case 'M':
          push(integer(static_cast<int64_t>(le(2))));
          break;  // BININT2
        case 'J':
          push(integer(static_cast<int32_t>(le(4))));
          break;  // BININT
        case 0x8a:
          push(integer(long1()));
          break;  // LONG1
        case 'G':
          push(real());
          break;  // BINFLOAT
        case 'X':
          push(string(take(le(4))));
          break;  // BINUNICODE
        case 0x8c:
          push(string(take(le(1))));
          break;  // SHORT_BINUNICODE
        case 0x8d:
          push(string(take(le(8))));
          break;  // BINUNICODE8
        case 'C':
          push(string(take(le(1))));
          break;  // SHORT_BINBYTES
        case 'B':
          push(string(take(le(4))));
          break;     // BINBYTES
        case 'c': {  // GLOBAL
          const std::string module = line();
          push(global(module, line()));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const auto name = pop(), module = pop();
          if (name->kind != Value::Kind::kString || module->kind != Value::Kind::kString)
            fail("STACK_GLOBAL needs two strings");
          push(global(module->text, name->text));
          break;
        }
        case 'q':
          memo(le(1));
          break;  // BINPUT
        case 'r':
          memo(le(4));
          break;  // LONG_BINPUT
        case 0x94:
          memo(memo_.size());
          break;  // MEMOIZE
        case 'h':
          push(recall(le(1)));
          break;  // BINGET
        case 'j':
          push(recall(le(4)));
          break;  // LONG_BINGET
        case 't':
          push(tuple(pop_mark()));
          break;  // TUPLE
        case 0x85:
          push(tuple(pop_n(1)));
          break;  // TUPLE1
        case 0x86:
          push(tuple(pop_n(2)));
          break;  // TUPLE2
        case 0x87:
          push(tuple(pop_n(3)));
          break;     // TUPLE3
        case 'l': {  // LIST
          auto l = make(Value::Kind::kList);
          l->items = pop_mark();
          push(l);
          break;
        }
        case 'a': {  // APPEND
          auto v = pop();
          list_top()->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto vs = pop_mark();
          auto l = list_top();
          l->items.insert(l->items.end(), vs.begin(), vs.end());
          break;
        }
        case 'd': {  // DICT
          auto d = make(Value::Kind::kDict);
          set_items(*d, pop_mark());
          push(d);
          break;
        }
        case 's': {  // SETITEM
          auto v = pop(), k = pop();
          set_items(*dict_top(), {k, v});
          break;
        }
        case 'u': {  // SETITEMS
          auto kvs = pop_mark();
          set_items(*dict_top(), kvs);
          break;
        }
        case 'Q':
          push(persistent(pop()));
          break;     // BINPERSID
        case 'R': {  // REDUCE
          auto args = pop(), callable = pop();
          push(reduce(*callable, *args));
          break;
        }
        case 0x81: {  // NEWOBJ
          auto args = pop(), cls = pop();
          push(object(*cls, *args));
          break;
        }
        case 'b': {  // BUILD
          auto state = pop();
          auto target = top();
          // An object's attributes; an OrderedDict's _metadata is not needed.
          if (target->kind == Value::Kind::kObject) {
            if (state->kind != Value::Kind::kDict)
              fail(cat("the state of a ", target->text, " is a ", kind_name(state->kind)));
            target->dict = state->dict;
          }
          break;
        }
        default:
          fail(cat("unsupported pickle opcode 0x", std::hex, static_cast<int>(op)));
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw core::Error(cat("malformed pickle: ", why)); }

  std::string_view take(uint64_t n) {
    if (n > in_.size() - pos_) fail("ends early (truncated?)");
    const auto s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t le(int width) {
    const auto s = take(static_cast<uint64_t>(width));
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<size_t>(i)]);
    return v;
  }
  int64_t long1() {
    const auto n = le(1);
    if (n > 8) fail("integer wider than 64 bits");
    const auto s = take(n);
    uint64_t v = 0;
    for (int i = static_cast<int>(n) - 1; i >= 0; --i)
      v = (v << 8) | static_cast<unsigned char>(s[static_cast<size_t>(i)]);
    if (n > 0 && n < 8 && (static_cast<unsigned char>(s[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  std::string line() {
    const auto end = in_.find('\n', pos_);
    if (end == std::string_view::npos) fail("unterminated GLOBAL");
    std::string s(in_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }

  void push(ValuePtr v) {
    if (stack_.size() >= kMaxStack) fail("stack too deep");
    stack_.push_back(std::move(v));
  }
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_n(size_t n) {
    std::vector<ValuePtr> out(n);
    for (size_t i = n; i-- > 0;) out[i] = pop();
    return out;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK");
    const size_t at = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(stack_.begin() + static_cast<std::ptrdiff_t>(at), stack_.end());
    stack_.resize(at);
    return out;
  }
  ValuePtr list_top() {
    auto l = top();
    if (l->kind != Value::Kind::kList) fail("APPEND to a non-list");
    return l;
  }
  ValuePtr dict_top() {
    auto d = top();
    if (d->kind != Value::Kind::kDict) fail("SETITEM on a non-dict");
    return d;
  }
  void set_items(Value& d, const std::vector<ValuePtr>& kvs) {
    if (kvs.size() % 2) fail("odd number of dict items");
    for (size_t i = 0; i < kvs.size(); i += 2) d.dict.emplace_back(kvs[i], kvs[i + 1]);
  }
  void memo(uint64_t index) { memo_[index] = top(); }
  ValuePtr recall(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail(cat("memo entry ", index, " was never stored"));
    return it->second;
  }

  static ValuePtr boolean(bool b) {
    auto v = make(Value::Kind::kBool);
    v->integer = b;
    return v;
  }
  static ValuePtr integer(int64_t i) {
    auto v = make(Value::Kind::kInt);
    v->integer = i;
    return v;
  }
  ValuePtr real() {
    uint64_t bits = 0;
    const auto s = take(8);
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<unsigned char>(s[static_cast<size_t>(i)]);
    auto v = make(Value::Kind::kFloat);
    std::memcpy(&v->real, &bits, sizeof bits);
    return v;
  }
  static ValuePtr string(std::string_view s) {
    auto v = make(Value::Kind::kString);
    v->text = std::string(s);
    return v;
  }
  static ValuePtr global(const std::string& module, const std::string& name) {
    auto v = make(Value::Kind::kGlobal);
    v->text = module + "." + name;
    return v;
  }
  static ValuePtr tuple(std::vector<ValuePtr> items) {
    auto v = make(Value::Kind::kTuple);
    v->items = std::move(items);
    return v;
  }

  int64_t int_arg(const Value& v, const char* what) const {
    if (v.kind != Value::Kind::kInt) fail(cat(what, " is a ", kind_name(v.kind), ", not an int"));
    return v.integer;
  }
  std::vector<int64_t> ints_arg(const Value& v, const char* what) const {
    if (v.kind != Value::Kind::kTuple && v.kind != Value::Kind::kList) fail(cat(what, " is not a tuple"));
    std::vector<int64_t> out;
    for (const auto& i : v.items) out.push_back(int_arg(*i, what));
    return out;
  }

  // ('storage', torch.FloatStorage, key, location, numel): the record data/<key>.
  ValuePtr persistent(const ValuePtr& pid) {
    if (pid->kind != Value::Kind::kTuple || pid->items.size() < 5 || pid->items[0]->kind != Value::Kind::kString ||
        pid->items[0]->text != "storage" || pid->items[1]->kind != Value::Kind::kGlobal ||
        pid->items[2]->kind != Value::Kind::kString) {
      fail("persistent id is not a ('storage', type, key, location, numel) tuple");
    }
    auto s = make(Value::Kind::kStorage);
    s->text = pid->items[2]->text;
    s->dtype = storage_dtype(pid->items[1]->text);
    s->numel = int_arg(*pid->items[4], "storage size");
    return s;
  }

  // LibTorch's archives hold TorchScript modules: objects of __torch__ classes built empty, then
  // given their attributes by BUILD. No other class is ever instantiated.
  ValuePtr object(const Value& cls, const Value& args) {
    if (cls.kind != Value::Kind::kGlobal || cls.text.rfind("__torch__.", 0) != 0) {
      throw core::Error(cat("the pickle creates a ", cls.kind == Value::Kind::kGlobal ? cls.text : kind_name(cls.kind),
                            "; shrink reads state_dicts and LibTorch module archives"));
    }
    if (args.kind != Value::Kind::kTuple || !args.items.empty()) fail(cat(cls.text, " is created with arguments"));
    auto v = make(Value::Kind::kObject);
    v->text = cls.text;
    return v;
  }

  ValuePtr reduce(const Value& callable, const Value& args) {
    if (callable.kind != Value::Kind::kGlobal) fail(cat("REDUCE calls a ", kind_name(callable.kind)));
    if (args.kind != Value::Kind::kTuple) fail("REDUCE arguments are not a tuple");
    const auto& a = args.items;
    if (callable.text == "collections.OrderedDict") return make(Value::Kind::kDict);
    if (callable.text == "torch._utils._rebuild_tensor_v2" || callable.text == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Value::Kind::kStorage) fail("tensor rebuild without a storage");
      auto v = make(Value::Kind::kTensor);
      v->items = {a[0]};
      v->sizes = ints_arg(*a[2], "tensor size");
      v->strides = ints_arg(*a[3], "tensor stride");
      v->offset = int_arg(*a[1], "storage offset");
      if (v->sizes.size() != v->strides.size()) fail("tensor size and stride differ in rank");
      return v;
    }
    // LibTorch's pickler (shrink's own .pth) tags typed containers: Dict[str, Tensor].
    if (callable.text == "torch.jit._pickle.restore_type_tag") {
      if (a.empty()) fail("restore_type_tag without a value");
      return a[0];
    }
    if (callable.text == "torch._utils._rebuild_parameter" ||
        callable.text == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Value::Kind::kTensor) fail("parameter rebuild without a tensor");
      return a[0];
    }
    throw core::Error(
        cat("the pickle calls ", callable.text, "; shrink reads dicts of tensors (torch.save(model.state_dict()))"));
  }

  std::string_view in_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
};

// The root object of an archive's data.pkl, with what its tensors need to be materialised.
struct Unpickled {
  ValuePtr root;
  std::map<std::string, ZipRecord> records;
  std::string data_prefix;
};

Unpickled unpickle(std::string_view archive, const std::string& what) {
  Unpickled out;
  out.records = read_zip_index(archive, what);
  // torch.save names records "<folder>/data.pkl" and "<folder>/data/<key>"; the folder varies.
  const ZipRecord* pickle = nullptr;
  for (const auto& [name, record] : out.records) {
    const std::string tail = "data.pkl";
    if (name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0 &&
        name.find('/') == name.size() - tail.size() - 1) {
      out.data_prefix = name.substr(0, name.size() - tail.size()) + "data/";
      pickle = &record;
      break;
    }
  }
  if (!pickle) throw core::Error(cat(what, ": no data.pkl record (not a file written by torch.save?)"));
  if (pickle->deflated) throw core::Error(cat(what, ": data.pkl is compressed; torch.save stores it"));
  try {
    out.root = Machine(archive.substr(pickle->offset, pickle->size)).run();
  } catch (const core::Error& e) {
    throw core::Error(cat(what, ": ", e.what()));
  }
  return out;
}

// Attributes of `object` and of the objects below it, named by their dotted paths. Each object
// is visited once: a cycle, or one object reached twice (2^depth paths), is refused.
void flatten(const Value& object, const std::string& prefix, int depth, Materialiser& tensors,
             std::set<const Value*>& seen, std::vector<ArchiveValue>& out) {
  if (depth > kMaxObjectDepth) throw core::Error(cat("'", prefix, "': modules nest deeper than ", kMaxObjectDepth));
  if (!seen.insert(&object).second) throw core::Error(cat("'", prefix, "': the same module is reached twice"));
  for (const auto& [key, value] : object.dict) {
    if (key->kind != Value::Kind::kString)
      throw core::Error(cat("a ", object.text, " has a ", kind_name(key->kind), " attribute name"));
    const std::string name = prefix + key->text;
    switch (value->kind) {
      case Value::Kind::kObject:
        flatten(*value, name + ".", depth + 1, tensors, seen, out);
        break;
      case Value::Kind::kString:
        out.push_back({name, at::Tensor(), value->text, true});
        break;
      case Value::Kind::kTensor:
        try {
          out.push_back({name, tensors.tensor(*value), std::string(), false});
        } catch (const core::Error& e) {
          throw core::Error(cat("'", name, "': ", e.what()));
        }
        break;
      default:
        throw core::Error(
            cat("'", name, "' is a ", kind_name(value->kind), "; expected a tensor, a string or a module"));
    }
  }
}

}  // namespace

StateDict read_torch_pickle(std::string_view archive, const std::string& what) {
  const Unpickled u = unpickle(archive, what);
  if (u.root->kind != Value::Kind::kDict) {
    throw core::Error(cat(what, ": expected a dict of tensors (a state_dict), found a ", kind_name(u.root->kind)));
  }
  StateDict out;
  Materialiser tensors(archive, u.records, u.data_prefix);
  for (const auto& [key, value] : u.root->dict) {
    if (key->kind != Value::Kind::kString || value->kind != Value::Kind::kTensor) {
      throw core::Error(cat(what, ": expected a dict of name → tensor; found a ", kind_name(key->kind), " → ",
                            kind_name(value->kind), " entry",
                            key->kind == Value::Kind::kString ? cat(" ('", key->text, "')") : std::string()));
    }
    try {
      out.push_back({key->text, tensors.tensor(*value), false});
    } catch (const core::Error& e) {
      throw core::Error(cat(what, ": '", key->text, "': ", e.what()));
    }
  }
  return out;
}

std::vector<ArchiveValue> read_torch_module_archive(std::string_view archive, const std::string& what) {
  const Unpickled u = unpickle(archive, what);
  if (u.root->kind != Value::Kind::kObject) {
    throw core::Error(cat(what, ": expected a LibTorch module archive, found a ", kind_name(u.root->kind)));
  }
  std::vector<ArchiveValue> out;
  Materialiser tensors(archive, u.records, u.data_prefix);
  std::set<const Value*> seen;
  try {
    flatten(*u.root, "", 0, tensors, seen, out);
  } catch (const core::Error& e) {
    throw core::Error(cat(what, ": ", e.what()));
  }
  return out;
}

}  // namespace shrink::io
