<?php
/*
 * php2php, the sending side: sends messages to the script connected with
 * Ident 'receiver', knowing nothing but that name.
 *
 *   php sender.php ws://127.0.0.1:8080/php "Hello 1" "Hello 2" ...
 */
require __DIR__ . '/wsclient.php';

$address = $argv[1] ?? 'ws://127.0.0.1:8080/php';
$messages = array_slice($argv, 2) ?: ['Hello 1 from sender', 'Hello 22 from sender', 'Hello 333 from sender'];
$ws = new PhpWsClient($address);
foreach ($messages as $message) {
    if (!$ws->feedback($message, 'receiver')) {
        fwrite(STDERR, "no acknowledgement for '$message'\n");
        exit(1);
    }
}
$ws->close();
