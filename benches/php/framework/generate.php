<?php
// Generates the benchmark application's own classes (one file per class, as an app has them):
// 150 services with constructor dependencies and 150 controllers. Run once per benchmark run:
//   php generate.php DIR
$dir = $argv[1] ?? __DIR__ . '/var/src';
@mkdir($dir, 0755, true);
for ($i = 0; $i < 150; $i++) {
    $deps = $i < 3 ? [] : [($i * 7) % $i, ($i * 13) % $i];
    $args = implode(', ', array_map(fn($d) => "public readonly Service$d \$s$d", array_unique($deps)));
    file_put_contents("$dir/Service$i.php", "<?php\nnamespace App;\nfinal class Service$i {\n    private array \$cache = [];\n    public function __construct($args) {}\n    public function value(int \$n): array { return ['service' => $i, 'n' => \$n, 'hash' => crc32('s$i' . \$n)]; }\n}\n");
    file_put_contents("$dir/Controller$i.php", "<?php\nnamespace App;\nfinal class Controller$i {\n    public function __construct(private Service$i \$service) {}\n    public function __invoke(array \$params): array {\n        \$items = [];\n        for (\$k = 0; \$k < 20; \$k++) { \$items[] = \$this->service->value((int) (\$params['id'] ?? 0) + \$k); }\n        return ['route' => \$params['_route'], 'items' => \$items];\n    }\n}\n");
}
