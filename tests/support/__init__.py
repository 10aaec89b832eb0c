"""
Helpers shared by the tests (fixtures built on them are in tests/conftest.py).

    memory       MemoryConnection, WsPeer, ws_protocol, http_exchange, open_memory,
                 text_event/binary_event (websockets Frames), HttpRecorder
    wire         bytes on the wire: handshake_request, client_frame and the
                 *_frame_bytes builders, close_payload, server_close_bytes,
                 parse_server_frames/parse_server_bytes, WS_KEY/WS_ACCEPT
    loopback     Served (a component on 127.0.0.1:0), in_thread, raw_ws_client
    tls          self_signed (certificate and key files)
    processes    free_port, python_path_env, Twistd (a ``twistd -n ratchetpy``)
    wamp         WampEcho, WampRecorder, LoopbackMixin, wamp_peer/open_peer, texts, close_of
    wamp_client  WampClient (WAMP v1 over the websockets sync client)
    ci           in_ci, require_tool: the one rule for tests CI must not skip
    timing       seconds (waits stretched by RATCHETPY_TESTS_TIMEOUT_FACTOR)
    paths        ROOT, EXAMPLES, DATA
    tap_targets  route targets for the twistd option tests
"""
