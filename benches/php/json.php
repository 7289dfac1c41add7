<?php
// A 1000-item json_encode page (~29 KB): an API listing of small records.
$items = [];
for ($i = 0; $i < 1000; $i++) {
    $items[] = ['id' => $i, 'name' => "item $i"];
}
header('Content-Type: application/json');
echo json_encode($items);
