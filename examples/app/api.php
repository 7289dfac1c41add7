<?php
// A JSON endpoint: n squares.
$n = max(0, min(1000, (int) ($_GET['n'] ?? 10)));
header('Content-Type: application/json');
echo json_encode(['n' => $n, 'squares' => array_map(fn ($i) => $i * $i, range(1, max(1, $n)))]);
