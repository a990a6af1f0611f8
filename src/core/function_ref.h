// A non-owning reference to a callable, for a parameter that is called during the call and never
// kept. Unlike std::function it never allocates (STYLE §3: nothing allocates in the decode loop),
// and it costs one indirect call.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace dsv4 {

template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  // REQUIRES: f outlives every call through this reference (a lambda passed as an argument does).
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef> &&
                                                    std::is_invocable_r_v<R, F&, Args...>>>
  FunctionRef(F&& f)   // NOLINT: implicit by design (a lambda argument converts)
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

}  // namespace dsv4
