%% bench.erl -- the Erlang/OTP peer of troupe's benchmark suite
%% (docs/benchmarks.md). One process per actor, plain `!' and `receive'.
%%
%%   erl -noshell -pa .build -run bench main <name> [sizes...]
%%
%% main/1 spawns a driver process that builds the actors, times the measured
%% part with erlang:monotonic_time/1, verifies the result and sends it back;
%% main prints one line and halts (status 1 on check=FAIL).
-module(bench).
-export([main/1]).

-define(RING, 503).

%% ---------------------------------------------------------------------------
%% entry point

main([Name | Args]) ->
    Sizes = [list_to_integer(A) || A <- Args],
    Self = self(),
    {Driver, Ref} = spawn_monitor(fun() -> Self ! {result, self(), run(Name, Sizes)} end),
    receive
        {result, Driver, {N, Secs, Unit, Ok}} ->
            report(Name, N, Secs, Unit, Ok);
        {'DOWN', Ref, process, Driver, Reason} ->
            io:format(standard_error, "erlang peer: ~s crashed: ~p~n", [Name, Reason]),
            report(Name, 0, 0.0, "none", false)
    end;
main([]) ->
    io:format(standard_error, "usage: bench <name> [sizes...]~n", []),
    erlang:halt(2).

report(Name, N, Secs, Unit, Ok) ->
    Rate = case Secs > 0 of true -> round(N / Secs); false -> 0 end,
    io:format("bench=~s impl=erlang threads=~b n=~b seconds=~.6f rate=~b unit=~s "
              "peak_rss_kb=~b check=~s placement=beam_scheduler~n",
              [Name, erlang:system_info(schedulers_online), N, Secs, Rate, Unit,
               peak_rss_kb(), case Ok of true -> "ok"; false -> "FAIL" end]),
    erlang:halt(case Ok of true -> 0; false -> 1 end).

peak_rss_kb() ->
    {ok, Bin} = file:read_file("/proc/self/status"),
    Lines = string:split(binary_to_list(Bin), "\n", all),
    case [L || "VmHWM:" ++ L <- Lines] of
        [V | _] -> list_to_integer(string:trim(string:trim(V), trailing, " kB"));
        [] -> -1
    end.

now_ns() -> erlang:monotonic_time(nanosecond).

secs(T0) -> (now_ns() - T0) / 1.0e9.

%% Each run/2 returns {N, Seconds, Unit, Ok}.
run("pingpong", A)     -> pingpong(arg(A, 1, 1000000));
run("threadring", A)   -> threadring(arg(A, 1, 10000000));
run("counting", A)     -> counting(arg(A, 1, 10000000));
run("fjthroughput", A) -> fjthroughput(arg(A, 1, 60), arg(A, 2, 400000));
run("fjcreate", A)     -> fjcreate(arg(A, 1, 1000000));
run("mailbox", A)      -> mailbox(arg(A, 1, 20), arg(A, 2, 500000));
run("big", A)          -> big(arg(A, 1, 500), arg(A, 2, 20000));
run("chameneos", A)    -> chameneos(arg(A, 1, 100), arg(A, 2, 200000));
run("skynet", A)       -> skynet(arg(A, 1, 1000000));
run(Name, _) ->
    io:format(standard_error, "erlang peer: no benchmark '~s'~n", [Name]),
    erlang:halt(2).

arg(Args, I, _Default) when length(Args) >= I -> lists:nth(I, Args);
arg(_, _, Default) -> Default.

%% ---------------------------------------------------------------------------
%% pingpong [N]: ping sends {ping, Self}, pong answers the sender; N round trips.

pingpong(N) ->
    Driver = self(),
    Pong = spawn(fun() -> pong(0) end),
    Ping = spawn(fun() -> receive go -> ping(Pong, self(), N), Driver ! {ping_done, N} end end),
    T0 = now_ns(),
    Ping ! go,
    receive {ping_done, Trips} -> ok end,
    Secs = secs(T0),
    Pong ! {stop, Driver},
    receive {pongs, Pongs} -> ok end,
    {N, Secs, "roundtrips", Trips =:= N andalso Pongs =:= N}.

ping(_Pong, _Self, 0) -> ok;
ping(Pong, Self, N) ->
    Pong ! {ping, Self},
    receive pong -> ping(Pong, Self, N - 1) end.

pong(Count) ->
    receive
        {ping, From} -> From ! pong, pong(Count + 1);
        {stop, From} -> From ! {pongs, Count}
    end.

%% ---------------------------------------------------------------------------
%% threadring [T]: 503 processes in a ring pass a counting-down token; the
%% one that receives 0 reports its index to the driver.

threadring(T) ->
    Driver = self(),
    Ring = [spawn(fun() -> receive {next, Next} -> ring_node(I, Next, Driver) end end)
            || I <- lists:seq(0, ?RING - 1)],
    [First | _] = Ring,
    lists:foreach(fun({P, Next}) -> P ! {next, Next} end,
                  lists:zip(Ring, tl(Ring) ++ [First])),
    T0 = now_ns(),
    First ! T,
    receive {token_done, Id} -> ok end,
    Secs = secs(T0),
    {T, Secs, "hops", Id =:= T rem ?RING}.

ring_node(Id, Next, Driver) ->
    receive
        0 -> Driver ! {token_done, Id}, ring_node(Id, Next, Driver);
        Token -> Next ! Token - 1, ring_node(Id, Next, Driver)
    end.

%% ---------------------------------------------------------------------------
%% counting [N]: the driver (producer) sends N {inc, 1} to a counter, then
%% asks for the total.

counting(N) ->
    %% The counter's queue can grow long; off_heap keeps queued messages out
    %% of its GC and lets the sender enqueue without taking its main lock.
    Counter = spawn_opt(fun() -> counter(0) end, [{message_queue_data, off_heap}]),
    T0 = now_ns(),
    produce(Counter, N),
    Counter ! {get, self()},
    receive {total, Total} -> ok end,
    Secs = secs(T0),
    {N, Secs, "msgs", Total =:= N}.

produce(_Counter, 0) -> ok;
produce(Counter, N) -> Counter ! {inc, 1}, produce(Counter, N - 1).

counter(Total) ->
    receive
        {inc, V} -> counter(Total + V);
        {get, From} -> From ! {total, Total}
    end.

%% ---------------------------------------------------------------------------
%% fjthroughput [K M]: the driver sends M messages to each of K workers,
%% round-robin; each counts to M and tells the driver.

fjthroughput(K, M) ->
    Driver = self(),
    Workers = [spawn(fun() -> fj_worker(Driver, M, 0) end) || _ <- lists:seq(1, K)],
    T0 = now_ns(),
    fj_rounds(M, Workers),
    Counts = [receive {fj_done, W, C} -> C end || W <- Workers],
    Secs = secs(T0),
    {K * M, Secs, "msgs", lists:all(fun(C) -> C =:= M end, Counts)}.

fj_rounds(0, _) -> ok;
fj_rounds(M, Workers) -> fj_send(Workers), fj_rounds(M - 1, Workers).

fj_send([]) -> ok;
fj_send([W | Ws]) -> W ! msg, fj_send(Ws).

fj_worker(Driver, M, M) -> Driver ! {fj_done, self(), M};
fj_worker(Driver, M, Count) ->
    receive msg -> fj_worker(Driver, M, Count + 1) end.

%% ---------------------------------------------------------------------------
%% fjcreate [N]: the driver spawns N processes and sends each one message;
%% each replies and exits; the driver counts N replies.

fjcreate(N) ->
    Driver = self(),
    %% Up to N replies queue up while the driver is still spawning. With the
    %% default on-heap message queue every GC of the driver scans them all
    %% (quadratic); off_heap is OTP's documented setting for such a process.
    process_flag(message_queue_data, off_heap),
    T0 = now_ns(),
    fjc_spawn(Driver, N),
    Replies = fjc_collect(N, 0),
    Secs = secs(T0),
    {N, Secs, "actors", Replies =:= N}.

fjc_spawn(_Driver, 0) -> ok;
fjc_spawn(Driver, N) ->
    P = spawn(fun fjc_actor/0),
    P ! {hello, Driver},
    fjc_spawn(Driver, N - 1).

fjc_actor() ->
    receive {hello, From} -> From ! reply end.

fjc_collect(0, Got) -> Got;
fjc_collect(N, Got) -> receive reply -> fjc_collect(N - 1, Got + 1) end.

%% ---------------------------------------------------------------------------
%% mailbox [S M]: S senders each send M messages to one receiver, which
%% counts S*M and reports.

mailbox(S, M) ->
    Driver = self(),
    Total = S * M,
    %% N:1 flood: off_heap, as for the counter in counting.
    Receiver = spawn_opt(fun() -> mb_receiver(Driver, Total, 0) end,
                         [{message_queue_data, off_heap}]),
    Senders = [spawn(fun() -> receive go -> mb_send(Receiver, M) end end)
               || _ <- lists:seq(1, S)],
    T0 = now_ns(),
    [P ! go || P <- Senders],
    receive {mb_done, Count} -> ok end,
    Secs = secs(T0),
    {Total, Secs, "msgs", Count =:= Total}.

mb_send(_Receiver, 0) -> ok;
mb_send(Receiver, M) -> Receiver ! msg, mb_send(Receiver, M - 1).

mb_receiver(Driver, Total, Total) -> Driver ! {mb_done, Total};
mb_receiver(Driver, Total, Count) ->
    receive msg -> mb_receiver(Driver, Total, Count + 1) end.

%% ---------------------------------------------------------------------------
%% big [W P]: each worker pings a random peer (xorshift32 seeded from its
%% index), waits for the pong, pings again, until it has P pongs; all along it
%% answers every ping at once. A worker with P pongs tells the driver and
%% keeps answering until the driver stops everyone; each then reports how
%% many pings it answered (the sum must be W*P).

big(W, P) when W >= 2 ->
    Driver = self(),
    Workers = [spawn(fun() -> big_start(Driver, I, W, P) end) || I <- lists:seq(0, W - 1)],
    Peers = list_to_tuple(Workers),
    [Wk ! {peers, Peers} || Wk <- Workers],
    [receive {big_ready, Wk} -> ok end || Wk <- Workers],
    T0 = now_ns(),
    [Wk ! go || Wk <- Workers],
    [receive {big_done, Wk} -> ok end || Wk <- Workers],
    Secs = secs(T0),
    [Wk ! stop || Wk <- Workers],
    Answered = lists:sum([receive {big_answered, Wk, A} -> A end || Wk <- Workers]),
    {2 * W * P, Secs, "msgs", Answered =:= W * P};
big(_, _) ->
    {0, 0.0, "msgs", false}.

big_start(Driver, Idx, W, P) ->
    receive {peers, Peers} -> ok end,
    Driver ! {big_ready, self()},
    Seed = ((Idx + 1) * 2654435761) band 16#FFFFFFFF,
    receive go -> ok end,
    Self = self(),
    Rng = big_ping(Self, Peers, Idx, W, Seed),
    big_loop(Driver, Self, Peers, Idx, W, P, Rng, 0, 0).

%% Sends a ping to a random peer other than itself; returns the new PRNG state.
big_ping(Self, Peers, Idx, W, X0) ->
    X1 = X0 bxor ((X0 bsl 13) band 16#FFFFFFFF),
    X2 = X1 bxor (X1 bsr 17),
    X = X2 bxor ((X2 bsl 5) band 16#FFFFFFFF),
    R = X rem (W - 1),
    Peer = case R >= Idx of true -> R + 1; false -> R end,
    element(Peer + 1, Peers) ! {ping, Self},
    X.

big_loop(Driver, Self, Peers, Idx, W, P, Rng, Pongs, Answered) ->
    receive
        {ping, From} ->
            From ! pong,
            big_loop(Driver, Self, Peers, Idx, W, P, Rng, Pongs, Answered + 1);
        pong when Pongs + 1 =:= P ->
            Driver ! {big_done, Self},
            big_idle(Driver, Self, Answered);
        pong ->
            Rng1 = big_ping(Self, Peers, Idx, W, Rng),
            big_loop(Driver, Self, Peers, Idx, W, P, Rng1, Pongs + 1, Answered)
    end.

big_idle(Driver, Self, Answered) ->
    receive
        {ping, From} -> From ! pong, big_idle(Driver, Self, Answered + 1);
        stop -> Driver ! {big_answered, Self, Answered}
    end.

%% ---------------------------------------------------------------------------
%% chameneos [C M]: C chameneos meet through a mall; after M meetings the
%% mall answers every request with stop and each chameneo reports its count.

chameneos(C, M) ->
    Driver = self(),
    Mall = spawn(fun() -> mall(M, 0, none) end),
    Colours = {blue, red, yellow},
    Chams = [spawn(fun() -> receive go -> cham(Driver, Mall, element(I rem 3 + 1, Colours), 0) end end)
             || I <- lists:seq(0, C - 1)],
    T0 = now_ns(),
    [Ch ! go || Ch <- Chams],
    Total = lists:sum([receive {cham_done, Ch, Met} -> Met end || Ch <- Chams]),
    Secs = secs(T0),
    {M, Secs, "meetings", Total =:= 2 * M}.

mall(M, M, _Waiting) ->
    receive {meet, From, _Colour} -> From ! stop end,
    mall(M, M, none);
mall(M, Meetings, none) ->
    receive {meet, From, Colour} -> mall(M, Meetings, {From, Colour}) end;
mall(M, Meetings, {A, ColourA}) ->
    receive
        {meet, B, ColourB} ->
            A ! {mate, ColourB},
            B ! {mate, ColourA},
            mall(M, Meetings + 1, none)
    end.

cham(Driver, Mall, Colour, Met) ->
    Mall ! {meet, self(), Colour},
    receive
        {mate, Other} -> cham(Driver, Mall, complement(Colour, Other), Met + 1);
        stop -> Driver ! {cham_done, self(), Met}
    end.

complement(C, C) -> C;
complement(blue, red) -> yellow;
complement(blue, yellow) -> red;
complement(red, blue) -> yellow;
complement(red, yellow) -> blue;
complement(yellow, blue) -> red;
complement(yellow, red) -> blue.

%% ---------------------------------------------------------------------------
%% skynet [L]: a 10-ary tree of processes down to L leaves; leaf k sends k to
%% its parent, inner nodes send up the sum of their 10 children.

skynet(L) ->
    case tree_nodes(L) of
        error ->
            io:format(standard_error, "skynet: ~b leaves is not a power of 10~n", [L]),
            {0, 0.0, "actors", false};
        Nodes ->
            Driver = self(),
            T0 = now_ns(),
            spawn(fun() -> sky(Driver, 0, L) end),
            receive Sum when is_integer(Sum) -> ok end,
            Secs = secs(T0),
            {Nodes, Secs, "actors", Sum =:= L * (L - 1) div 2}
    end.

tree_nodes(1) -> 1;
tree_nodes(L) when L >= 10, L rem 10 =:= 0 ->
    case tree_nodes(L div 10) of error -> error; N -> N + L end;
tree_nodes(_) -> error.

sky(Parent, Num, 1) ->
    Parent ! Num;
sky(Parent, Num, Size) ->
    Self = self(),
    D = Size div 10,
    sky_spawn(Self, Num, D, 0),
    Parent ! sky_sum(10, 0).

sky_spawn(_Self, _Num, _D, 10) -> ok;
sky_spawn(Self, Num, D, I) ->
    Child = Num + I * D,
    spawn(fun() -> sky(Self, Child, D) end),
    sky_spawn(Self, Num, D, I + 1).

sky_sum(0, Sum) -> Sum;
sky_sum(K, Sum) -> receive S -> sky_sum(K - 1, Sum + S) end.
