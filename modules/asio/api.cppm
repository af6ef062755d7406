// async_connect's overloads: the Asio driver's public face (the operation is ConnectOp, in
// async_connect.cppm; what it does is said at the top of that file).
module;
#include <asio.hpp>
#include <span>
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
template <class Connector, class Executor, class Token>
auto async_connect(const Executor& executor, Connector& connector, const Endpoint& remote, Token&& token) {
  return async_connect(executor, connector, std::span<const Endpoint>(&remote, 1), std::stop_token{},
                       std::forward<Token>(token));
}

}  // namespace connpolicy::asio
