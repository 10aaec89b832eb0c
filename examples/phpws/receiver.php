<?php
/*
 * php2php, the receiving side: connects with Ident 'receiver' and prints
 * every message another script sends it by that name.
 *
 *   php receiver.php ws://127.0.0.1:8080/php [how-many] [seconds]
 */
require __DIR__ . '/wsclient.php';

$address = $argv[1] ?? 'ws://127.0.0.1:8080/php';
$wanted = (int) ($argv[2] ?? 3);
$seconds = (float) ($argv[3] ?? 30);
$ws = new PhpWsClient($address, 'receiver');
echo json_encode(['ready' => $ws->uuid]), "\n";
$deadline = microtime(true) + $seconds;
$got = 0;
while ($got < $wanted && microtime(true) < $deadline) {
    $packet = $ws->read($deadline - microtime(true));
    if ($packet === null) {
        break;
    }
    if (($packet['opcode'] ?? '') === 'feedback') {
        echo json_encode(['message' => $packet['message'], 'from' => $packet['fromUUID'] ?? null]), "\n";
        $got++;
    }
}
$ws->close();
exit($got === $wanted ? 0 : 1);
