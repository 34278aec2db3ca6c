using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Orleans.LIFL.Dashboard;

/// <summary>
/// The dashboard's HTTP server, hosted by a silo: Kestrel on <see cref="DashboardOptions.ListenAddress"/> (loopback by
/// default), JSON endpoints under <c>/api</c> and a server-sent-event stream of snapshots at <c>/api/events</c>.
/// </summary>
public sealed partial class DashboardServer(
    IOptions<DashboardOptions> options, DashboardSnapshots snapshots, ILoggerFactory loggerFactory, ILogger<DashboardServer> logger) : IHostedService, IAsyncDisposable
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    private readonly CancellationTokenSource _stopping = new();
    private WebApplication? _app;
    private Task _sampling = Task.CompletedTask;
    private int _disposed;

    /// <summary>The address it serves, once started (e.g. http://127.0.0.1:8080).</summary>
    public Uri? Address { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (settings.Problem() is { } problem)
        {
            throw new InvalidOperationException($"The dashboard cannot start: {problem}.");
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddSingleton(snapshots);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Parse(settings.ListenAddress), settings.Port));
        var app = builder.Build();
        if (settings.AccessToken is { Length: > 0 } token)
        {
            var expected = Encoding.UTF8.GetBytes(token);
            app.Use(async (context, next) =>
            {
                if (Authorized(context.Request, expected))
                {
                    await next(context);
                    return;
                }

                LogRefused(logger, context.Connection.RemoteIpAddress?.ToString() ?? "?", context.Request.Path);
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await context.Response.WriteAsJsonAsync(new { error = "this dashboard needs its access token (Authorization: Bearer TOKEN)" }, Json);
            });
        }

        // What an endpoint could not read is answered as 503 with the reason (logged), never as a bare 500.
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (Exception error) when (error is not OperationCanceledException && !context.Response.HasStarted)
            {
                LogEndpointFailed(logger, context.Request.Path, error.Message);
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                await context.Response.WriteAsJsonAsync(new { error = $"{context.Request.Path}: {error.GetType().Name}: {error.Message}" }, Json);
            }
        });

        app.MapGet("/api/cluster", async () => Results.Json(await snapshots.ClusterAsync(), Json));
        app.MapGet("/api/dataplane", () => Results.Json(snapshots.Dataplane(), Json));
        app.MapGet("/api/fl/jobs", async () => Results.Json(new { jobs = await snapshots.FlJobsAsync() }, Json));
        app.MapGet("/api/moe", async () => Results.Json(new { deployments = await snapshots.MoeAsync() }, Json));
        app.MapGet("/api/events", StreamAsync);
        app.MapGet("/", () => StaticFile("index.html"));
        app.MapGet("/{file}", (string file) => StaticFile(file));
        await app.StartAsync(cancellationToken);
        _app = app;
        _sampling = SampleAsync(settings.RefreshPeriod, _stopping.Token);
        Address = new Uri(app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        LogServing(logger, Address);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            await _stopping.CancelAsync();
        }

        await _sampling;
        if (_app is { } app)
        {
            await app.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        await _sampling;
        _stopping.Dispose();
        if (_app is { } app)
        {
            await app.DisposeAsync();
        }
    }

    /// <summary>
    /// Samples the cluster once per refresh period, whoever watches: membership changes are seen when they happen,
    /// rates cover steady intervals, and any number of open pages costs one round of silo reports per period.
    /// </summary>
    private async Task SampleAsync(TimeSpan period, CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(period);
        string? failing = null;
        try
        {
            do
            {
                try
                {
                    await snapshots.ClusterAsync();
                    failing = null;
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    // Logged when it starts failing (or fails otherwise), not every period.
                    if (failing != error.Message)
                    {
                        LogSampleFailed(logger, error.Message);
                    }

                    failing = error.Message;
                }
            }
            while (await timer.WaitForNextTickAsync(stopping));
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The silo stops.
        }
    }

    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".map"] = "application/json",
    };

    /// <summary>A file of the bundled web UI (embedded in this assembly at build time).</summary>
    private static IResult StaticFile(string file)
    {
        var stream = typeof(DashboardServer).Assembly.GetManifestResourceStream("wwwroot/" + file);
        return stream is null || !ContentTypes.TryGetValue(Path.GetExtension(file), out var type)
            ? Results.NotFound(new { error = $"no such file: {file}" })
            : Results.Stream(stream, type);
    }

    /// <summary>Server-sent events: the sampler's newest "cluster" snapshot and a "dataplane" one every refresh period, until the client goes.</summary>
    private async Task StreamAsync(HttpContext context)
    {
        context.Response.Headers.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var aborted = context.RequestAborted;
        using var timer = new PeriodicTimer(options.Value.RefreshPeriod);
        try
        {
            do
            {
                await WriteEventAsync(context.Response, "cluster", snapshots.Latest ?? await snapshots.ClusterAsync(), aborted);
                await WriteEventAsync(context.Response, "dataplane", snapshots.Dataplane(), aborted);
            }
            while (await timer.WaitForNextTickAsync(aborted));
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The browser left.
        }
    }

    private static async Task WriteEventAsync<T>(HttpResponse response, string name, T value, CancellationToken cancellationToken)
    {
        await response.WriteAsync($"event: {name}\ndata: {JsonSerializer.Serialize(value, Json)}\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    private static bool Authorized(HttpRequest request, byte[] expected)
    {
        var header = request.Headers.Authorization.ToString();
        var presented = header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..] : request.Query["access_token"].ToString();
        return presented.Length > 0 && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), expected);
    }

    [LoggerMessage(EventId = 8001, Level = LogLevel.Information, Message = "Dashboard at {Address}")]
    private static partial void LogServing(ILogger logger, Uri address);

    [LoggerMessage(EventId = 8004, Level = LogLevel.Warning, Message = "Dashboard could not answer {Path}: {Reason}")]
    private static partial void LogEndpointFailed(ILogger logger, PathString path, string reason);

    [LoggerMessage(EventId = 8003, Level = LogLevel.Warning, Message = "Dashboard could not sample the cluster: {Reason}")]
    private static partial void LogSampleFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 8002, Level = LogLevel.Warning, Message = "Dashboard refused a request from {Remote} for {Path}: no or a wrong access token")]
    private static partial void LogRefused(ILogger logger, string remote, PathString path);
}
