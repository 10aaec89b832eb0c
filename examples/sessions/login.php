<?php
// The PHP site of the socketo.me sessions tutorial: a login form that puts
// the user's name in the session, and a page whose WebSocket (served by
// server.py) is greeted by that name. Run it with:
//
//     SESSION_DIR=/tmp/ratchetpy-sessions php -S localhost:8000 examples/sessions/login.php
//
// The WebSocket server must read the same store: python examples/sessions/server.py
// (same SESSION_DIR). With memcached or Redis, set session.save_handler and
// session.save_path here and give server.py the same (see docs/sessions.md).

$dir = getenv('SESSION_DIR') ?: sys_get_temp_dir() . '/ratchetpy-sessions';
if (!is_dir($dir)) {
    mkdir($dir, 0700, true);
}
ini_set('session.save_handler', 'files');
ini_set('session.save_path', $dir);
ini_set('session.serialize_handler', 'php_serialize');
session_set_cookie_params(['path' => '/', 'httponly' => true, 'samesite' => 'Lax']);
session_start();

if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $name = trim((string)($_POST['name'] ?? ''));
    if ($name === '') {
        unset($_SESSION['name']);
    } else {
        session_regenerate_id(true);  // a new id at login, as every login should
        preg_match('/^.{0,64}/us', $name, $first);  // 64 characters at most, whole ones
        $_SESSION['name'] = $first[0] ?? '';
    }
    header('Location: /', true, 303);
    exit;
}

$ws = getenv('WS_URL') ?: 'ws://localhost:8080/sessDemo';
$name = $_SESSION['name'] ?? null;
header('Content-Type: text/html; charset=utf-8');
?><!doctype html>
<title>ratchetpy sessions demo</title>
<form method="post">
  <label>Your name <input name="name" value="<?= htmlspecialchars((string)$name) ?>"></label>
  <button>Log in</button>
</form>
<p>Logged in as: <b><?= $name === null ? 'nobody' : htmlspecialchars($name) ?></b></p>
<pre id="log"></pre>
<script>
  const log = (line) => { document.getElementById('log').textContent += line + '\n'; };
  const ws = new WebSocket(<?= json_encode($ws) ?>);
  ws.onmessage = (event) => log('server: ' + event.data);
  ws.onclose = (event) => log('closed (' + event.code + ')');
</script>
