<?php
/*
 * A small blocking client for ratchetpy's phpWebSocketServer mode, written
 * in the style of phpWebSocketServer's own PHP client: a raw stream socket,
 * a handshake with Client-Type: php and Ident, one fread($sock, 1024) for
 * the 101, then one JSON packet per frame. phpWebSocketServer's own
 * websocketPhp class works against the same server unchanged; this file
 * only keeps the examples self-contained.
 *
 *   $ws = new PhpWsClient('ws://127.0.0.1:8080/php', 'receiver');
 *   $ws->feedback('hello', 'receiver');        // by ident
 *   $ws->feedback('50 %', '', $browserUuid);   // by a browser's uuid
 *   $packet = $ws->read(5.0);                  // next packet, or null
 */

class PhpWsClient
{
    public $uuid = null;
    private $sock;
    private $buffer = '';

    public function __construct(string $address, string $ident = '', float $timeout = 5.0)
    {
        $parts = parse_url($address);
        $scheme = strtolower($parts['scheme'] ?? 'ws');
        $host = $parts['host'] ?? '127.0.0.1';
        $port = $parts['port'] ?? (in_array($scheme, ['wss', 'ssl']) ? 443 : 80);
        $path = $parts['path'] ?? '/php';
        $transport = in_array($scheme, ['wss', 'ssl']) ? 'ssl' : 'tcp';
        $this->sock = @stream_socket_client("$transport://$host:$port", $errno, $errstr, $timeout);
        if (!$this->sock) {
            throw new RuntimeException("cannot connect to $address: $errstr");
        }
        $key = base64_encode(random_bytes(16));
        fwrite($this->sock, "GET $path HTTP/1.1\r\nHost: $host\r\nUpgrade: websocket\r\n"
            . "Connection: Upgrade\r\nSec-WebSocket-Key: $key\r\nOrigin: http://$host\r\n"
            . "Sec-WebSocket-Version: 13\r\nClient-Type: php\r\nIdent: $ident\r\n\r\n");
        // One read for the 101, as phpWebSocketServer's client does: the
        // server sends 'ready' in a later write so that it is not in here.
        $head = fread($this->sock, 1024);
        if ($head === false || strpos($head, ' 101 ') === false) {
            throw new RuntimeException("no 101 from $address: " . var_export($head, true));
        }
        $ready = $this->read($timeout);
        if (!is_array($ready) || ($ready['opcode'] ?? '') !== 'ready') {
            throw new RuntimeException("no ready from $address");
        }
        $this->uuid = $ready['uuid'];
    }

    /** Send a packet and wait for the server's {"opcode":"next"}. */
    public function talk(array $packet, float $timeout = 5.0): bool
    {
        $this->send(json_encode($packet, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES));
        $reply = $this->read($timeout);
        return is_array($reply) && ($reply['opcode'] ?? '') === 'next';
    }

    /** Forward $message to the client with Ident $ident, or to the browser with uuid $uuid. */
    public function feedback($message, string $ident = '', string $uuid = ''): bool
    {
        return $this->talk(['opcode' => 'feedback', 'ident' => $ident, 'uuid' => $uuid,
            'message' => $message, 'fromUUID' => $this->uuid]);
    }

    /** Send $message to every browser client. */
    public function broadcast($message): bool
    {
        return $this->talk(['opcode' => 'broadcast', 'message' => $message]);
    }

    /** The next packet (decoded JSON), or null after $timeout seconds or at the end. */
    public function read(float $timeout = 5.0)
    {
        $deadline = microtime(true) + $timeout;
        while (true) {
            $frame = $this->frame();
            if ($frame !== null) {
                [$opcode, $payload] = $frame;
                if ($opcode === 9) {            // ping: pong with the same payload
                    $this->send($payload, 10);
                    continue;
                }
                if ($opcode === 8) {
                    return null;
                }
                return json_decode($payload, true);
            }
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                return null;
            }
            stream_set_timeout($this->sock, (int) $left, (int) (($left - (int) $left) * 1e6));
            $data = fread($this->sock, 8192);
            if ($data === false || $data === '') {
                if (feof($this->sock)) {
                    return null;
                }
                continue;
            }
            $this->buffer .= $data;
        }
    }

    public function close(): void
    {
        if ($this->sock) {
            $this->send('', 8);
            fclose($this->sock);
            $this->sock = null;
        }
    }

    private function frame(): ?array
    {
        $b = $this->buffer;
        if (strlen($b) < 2) {
            return null;
        }
        $length = ord($b[1]) & 127;
        $offset = 2;
        if ($length === 126) {
            if (strlen($b) < 4) {
                return null;
            }
            $length = unpack('n', substr($b, 2, 2))[1];
            $offset = 4;
        } elseif ($length === 127) {
            if (strlen($b) < 10) {
                return null;
            }
            $length = unpack('J', substr($b, 2, 8))[1];
            $offset = 10;
        }
        if (strlen($b) < $offset + $length) {
            return null;
        }
        $this->buffer = substr($b, $offset + $length);
        return [ord($b[0]) & 15, substr($b, $offset, $length)];
    }

    private function send(string $payload, int $opcode = 1): void
    {
        $length = strlen($payload);
        $head = chr(0x80 | $opcode);
        if ($length < 126) {
            $head .= chr(0x80 | $length);
        } elseif ($length < 65536) {
            $head .= chr(0x80 | 126) . pack('n', $length);
        } else {
            $head .= chr(0x80 | 127) . pack('J', $length);
        }
        $mask = random_bytes(4);
        $masked = '';
        for ($i = 0; $i < $length; $i++) {
            $masked .= $payload[$i] ^ $mask[$i % 4];
        }
        fwrite($this->sock, $head . $mask . $masked);
    }
}
