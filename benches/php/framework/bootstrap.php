<?php
// A framework-like application on Debian's Symfony 5.4 components (php-symfony-*): what a
// Symfony/Laravel request spends its boot on. Returns the booted App.
//
// Boot: Debian's autoloaders for HttpFoundation, Routing, DependencyInjection and
// EventDispatcher plus a PSR-4 autoloader for the app's 300 classes (var/src, made by
// generate.php); a DI container of 300 services (150 services wired by constructor + 150
// controllers), compiled ONCE and cached as a PHP class (var/cache/Container.php, like Symfony's
// prod cache); 300 routes, compiled once and cached (var/cache/routes.php); an event dispatcher
// with 40 listeners; a 400-key configuration array merged from defaults.
// Per request (App::handle): Request::createFromGlobals(), CompiledUrlMatcher, a kernel.request
// event through the dispatcher, the controller from the container, a JsonResponse sent.
use Symfony\Component\DependencyInjection\ContainerBuilder;
use Symfony\Component\DependencyInjection\Dumper\PhpDumper;
use Symfony\Component\DependencyInjection\Reference;
use Symfony\Component\EventDispatcher\EventDispatcher;
use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\Routing\Matcher\CompiledUrlMatcher;
use Symfony\Component\Routing\Matcher\Dumper\CompiledUrlMatcherDumper;
use Symfony\Component\Routing\RequestContext;
use Symfony\Component\Routing\Route;
use Symfony\Component\Routing\RouteCollection;

require_once '/usr/share/php/Symfony/Component/HttpFoundation/autoload.php';
require_once '/usr/share/php/Symfony/Component/Routing/autoload.php';
require_once '/usr/share/php/Symfony/Component/DependencyInjection/autoload.php';
require_once '/usr/share/php/Symfony/Component/EventDispatcher/autoload.php';

$var = getenv('FRAMEWORK_VAR') ?: __DIR__ . '/var';
spl_autoload_register(function (string $class) use ($var) {
    if (str_starts_with($class, 'App\\')) {
        $file = $var . '/src/' . substr($class, 4) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

final class RequestEvent extends \Symfony\Contracts\EventDispatcher\Event
{
    public array $attributes = [];
    public function __construct(public Request $request) {}
}

final class App
{
    public function __construct(
        private \Symfony\Component\DependencyInjection\ContainerInterface $container,
        private array $routes,
        private EventDispatcher $dispatcher,
        private array $config,
    ) {}

    public function handle(): void
    {
        $request = Request::createFromGlobals();
        $context = (new RequestContext())->fromRequest($request);
        $params = (new CompiledUrlMatcher($this->routes, $context))->match($request->getPathInfo());
        $event = new RequestEvent($request);
        $this->dispatcher->dispatch($event, 'kernel.request');
        $controller = $this->container->get($params['_controller']);
        $data = $controller($params);
        $data['listeners'] = count($event->attributes);
        $data['env'] = $this->config['app.env'];
        (new JsonResponse($data))->prepare($request)->send();
    }
}

$cache = "$var/cache";
if (!is_file("$cache/Container.php") || !is_file("$cache/routes.php")) {
    @mkdir($cache, 0755, true);
    $builder = new ContainerBuilder();
    for ($i = 0; $i < 150; $i++) {
        $deps = $i < 3 ? [] : array_unique([($i * 7) % $i, ($i * 13) % $i]);
        $builder->register("App\\Service$i", "App\\Service$i")->setArguments(array_map(fn($d) => new Reference("App\\Service$d"), array_values($deps)));
        $builder->register("App\\Controller$i", "App\\Controller$i")->setArguments([new Reference("App\\Service$i")])->setPublic(true);
    }
    $builder->compile();
    $tmp = "$cache/Container.php." . getmypid();
    file_put_contents($tmp, (new PhpDumper($builder))->dump(['class' => 'CachedContainer']));
    rename($tmp, "$cache/Container.php");
    $routes = new RouteCollection();
    for ($i = 0; $i < 300; $i++) {
        $c = $i % 150;
        $routes->add("r$i", new Route("/api/v1/section$i/{id}", ['_controller' => "App\\Controller$c"], ['id' => '\d+']));
    }
    $tmp = "$cache/routes.php." . getmypid();
    file_put_contents($tmp, '<?php return ' . var_export((new CompiledUrlMatcherDumper($routes))->getCompiledRoutes(), true) . ';');
    rename($tmp, "$cache/routes.php");
}
require_once "$cache/Container.php";
$container = new CachedContainer();

$dispatcher = new EventDispatcher();
for ($i = 0; $i < 40; $i++) {
    $dispatcher->addListener('kernel.request', function (RequestEvent $e) use ($i) { $e->attributes["l$i"] = true; }, $i);
}
$config = [];
foreach (range(0, 399) as $i) {
    $config = array_merge($config, ["key.$i" => ['value' => $i, 'label' => "setting $i"]]);
}
$config['app.env'] = 'prod';

return new App($container, require "$cache/routes.php", $dispatcher, $config);
