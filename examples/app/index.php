<?php
// fe-php example app: a guestbook kept in the session, a JSON endpoint, and server details.
session_start();
$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
if ($_SERVER['REQUEST_METHOD'] === 'POST' && isset($_POST['message']) && $_POST['message'] !== '') {
    $_SESSION['messages'][] = substr(trim((string) $_POST['message']), 0, 200);
    header('Location: /', true, 303);
    exit;
}
$messages = $_SESSION['messages'] ?? [];
?><!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>fe-php example</title></head>
<body>
<h1>Hello from PHP <?= htmlspecialchars(PHP_VERSION) ?> (<?= htmlspecialchars(PHP_SAPI) ?>)</h1>
<p>You have visited this page <?= (int) $_SESSION['visits'] ?> time(s) in this session.</p>
<form method="post" action="/">
  <input name="message" placeholder="Leave a message" maxlength="200">
  <button type="submit">Post</button>
</form>
<ul>
<?php foreach ($messages as $m): ?>
  <li><?= htmlspecialchars($m) ?></li>
<?php endforeach; ?>
</ul>
<p><a href="/api.php?n=5">JSON API</a></p>
</body>
</html>
