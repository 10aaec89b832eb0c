<?php
/*
 * A backend script feeding one browser by its uuid (phpWebSocketServer's
 * README loop): the page got its uuid in 'ready' and passed it to this
 * script (through an AJAX request, say); the script reports its progress
 * to exactly that page.
 *
 *   php backend.php ws://127.0.0.1:8080/php BROWSER-UUID [steps]
 */
require __DIR__ . '/wsclient.php';

[$script, $address, $uuid] = $argv + [null, null, null];
$steps = (int) ($argv[3] ?? 3);
if (!$address || !$uuid) {
    fwrite(STDERR, "usage: php backend.php ws://HOST:PORT/php BROWSER-UUID [steps]\n");
    exit(2);
}
$ws = new PhpWsClient($address);
for ($step = 1; $step <= $steps; $step++) {
    // ... a slice of the real work here ...
    if (!$ws->feedback("step $step of $steps done", '', $uuid)) {
        fwrite(STDERR, "the server did not acknowledge step $step\n");
        exit(1);
    }
}
$ws->close();
echo "sent $steps updates to $uuid\n";
