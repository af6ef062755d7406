// async_connect's overloads: the Asio driver's public face (the operation is ConnectOp, in
// async_connect.cppm; what it does is said at the top of that file).
module;
#include <asio.hpp>
#include <memory>
#include <span>
#include <type_traits>
#include <stop_token>
#include <utility>
export module connpolicy.asio:api;
import connpolicy.core;
import :connect_state;
import :async_connect;

export namespace connpolicy::asio {

// Connects with `connector`'s policies, on `executor`; see the top of this file. The endpoints
// are tried as Connector::connect tries them.
template <class Connector, class Executor, class Token>
auto async_connect(const Executor& executor, Connector& connector, std::span<const Endpoint> remotes,
                   std::stop_token stop, Token&& token) {
  return ::asio::async_compose<Token, void(detail::ConnectResult)>(
      detail::ConnectOp<Connector>(executor, connector, remotes, std::move(stop)), token, executor);
}
template <class Connector, class Executor, class Token>
auto async_connect(const Executor& executor, Connector& connector, std::span<const Endpoint> remotes, Token&& token) {
  return async_connect(executor, connector, remotes, std::stop_token{}, std::forward<Token>(token));
}
template <class Connector, class Executor, class Token>
auto async_connect(const Executor& executor, Connector& connector, const Endpoint& remote, std::stop_token stop,
                   Token&& token) {
  return async_connect(executor, connector, std::span<const Endpoint>(&remote, 1), std::move(stop),
                       std::forward<Token>(token));
}
// To a name: both families are looked up at once (SystemResolver's getaddrinfo threads, within
// the per-attempt timeout and the retry deadline, and again before each retry round) and the
// addresses race as for the blocking Connector (Happy Eyeballs). The name is copied.
template <class Connector, class Executor, class Token>
auto async_connect(const Executor& executor, Connector& connector, const HostPort& name, std::stop_token stop,
                   Token&& token) {
  return ::asio::async_compose<Token, void(detail::ConnectResult)>(
      detail::ConnectOp<Connector>(executor, connector, name, std::move(stop)), token, executor);
}
template <class Connector, class Executor, class Token>
auto async_connect(const Executor& executor, Connector& connector, const HostPort& name, Token&& token) {
  return async_connect(executor, connector, name, std::stop_token{}, std::forward<Token>(token));
}
// To a name, through `resolver` (a Resolver of your own: a cache, c-ares, a service registry,
// connpolicy.testing's resolvers in tests), as Connector::connect(name, resolver) does. Its
// blocking resolve() is called for AAAA and for A at once, each on one of the driver's helper
// threads (never the io thread), so it must be safe to call from two threads at once; the
// resolver is moved (or copied) into the operation and kept until both lookups are done. A
// resolver that throws ends the connect: its exception leaves io_context::run() once everything
// is given back, as an observer's does, and the handler is not called.
template <class Connector, class Executor, Resolver R, class Token>
auto async_connect(const Executor& executor, Connector& connector, const HostPort& name, R&& resolver,
                   std::stop_token stop, Token&& token) {
  using Owned = std::remove_cvref_t<R>;
  return ::asio::async_compose<Token, void(detail::ConnectResult)>(
      detail::ConnectOp<Connector, Owned>(executor, connector, name, std::move(stop),
                                          std::make_shared<Owned>(std::forward<R>(resolver))),
      token, executor);
}
template <class Connector, class Executor, Resolver R, class Token>
auto async_connect(const Executor& executor, Connector& connector, const HostPort& name, R&& resolver, Token&& token) {
  return async_connect(executor, connector, name, std::forward<R>(resolver), std::stop_token{},
                       std::forward<Token>(token));
}
template <class Connector, class Executor, class Token>
auto async_connect(const Executor& executor, Connector& connector, const Endpoint& remote, Token&& token) {
  return async_connect(executor, connector, std::span<const Endpoint>(&remote, 1), std::stop_token{},
                       std::forward<Token>(token));
}

}  // namespace connpolicy::asio
