using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Orleans.LIFL.Client.MoE;
using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.TestingHost;
using Xunit;

namespace Orleans.LIFL.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser (Debian's Chromium driven by Playwright) against a running in-process cluster:
/// the page loads without console errors, shows the silos, a running FL job's round going up, a killed silo as dead,
/// and the MoE view a failure event.
/// Each page's screenshot is saved under TestResults/dashboard.
/// </summary>
public sealed class DashboardBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";

    /// <summary>The cluster view lists the running silos live, the FL view a job's rounds going up, a killed silo shows as dead and the MoE view shows the failure.</summary>
    [Fact]
    public async Task The_page_shows_the_silos_a_dead_silo_and_a_MoE_failure()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: ./lifl test installs Debian's chromium");
        var pool = DashboardClusters.NewPoolName();
        await using var cluster = await DashboardClusters.StartAsync(3, pool, everySilo: false, o => o.RefreshPeriod = TimeSpan.FromMilliseconds(250));
        var dashboardSilo = cluster.Silos.First(s => s.Services.GetService<DashboardServer>() is not null);
        var address = dashboardSilo.Services.GetRequiredService<DashboardServer>().Address!;
        var moe = new MoeClient(cluster.Client);
        await moe.DeployAsync("browser-moe", new MoeDeploymentSpec { Config = DashboardClusters.SmallMoe, Seed = 1, Shadows = 1 });

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync();
        var consoleErrors = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                consoleErrors.Add($"{message.Text} ({message.Location})");
            }
        };
        page.PageError += (_, error) => consoleErrors.Add(error);
        await page.GotoAsync(address.ToString());

        foreach (var silo in cluster.Silos)
        {
            await Assertions.Expect(page.Locator("#silos tbody")).ToContainTextAsync(silo.Address.ToString());
        }

        await Assertions.Expect(page.Locator("#connection")).ToHaveTextAsync("live");
        var directory = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "TestResults", "dashboard"));
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory.FullName, "cluster.png"), FullPage = true });

        // A running FL job: its round count goes up on screen.
        using var attachment = Orleans.LIFL.Dataplane.SharedBufferPool.Acquire(pool);
        var run = Orleans.LIFL.Client.FL.FederatedRun.RunAsync(
            cluster.Client, attachment,
            new Orleans.LIFL.Client.FL.FederatedRunOptions
            {
                JobId = "browser-fl",
                Model = "mlp",
                Clients = 3,
                Rounds = 6,
                TrainingExamples = 9000,
                Training = new Grains.FL.TrainingSettings { Epochs = 1, BatchSize = 32, LearningRate = 0.05 },
            },
            progress: null, logger: null, TestContext.Current.CancellationToken);
        await page.ClickAsync("nav a[data-view=fl]");
        var roundCell = page.Locator("#jobs tbody tr", new PageLocatorOptions { HasText = "browser-fl" }).Locator("td").Nth(3);
        await Assertions.Expect(roundCell).ToContainTextAsync(" / 6", new LocatorAssertionsToContainTextOptions { Timeout = 20_000 });
        var firstRound = int.Parse((await roundCell.InnerTextAsync()).Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        var started = DateTime.UtcNow;
        int round;
        while ((round = int.Parse((await roundCell.InnerTextAsync()).Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)) <= firstRound)
        {
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(60), $"the job's round stayed at {firstRound} on screen");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        Assert.True(round > firstRound);
        await run;
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory.FullName, "fl-running.png"), FullPage = true });
        await page.ClickAsync("nav a[data-view=cluster]");

        // Generations keep running across the kill: the MoE view charts their tokens and the failure's stall.
        using var generating = new CancellationTokenSource();
        var prompt = MoeClient.Tokenize("dashboard ");
        var generations = Task.Run(async () =>
        {
            var tokens = 0;
            while (!generating.IsCancellationRequested)
            {
                await foreach (var _ in moe.GenerateAsync("browser-moe", prompt, new GenerationOptions { MaxTokens = 60 }, CancellationToken.None))
                {
                    tokens++;
                }
            }

            return tokens;
        });
        await page.ClickAsync("nav a[data-view=moe]");
        await Assertions.Expect(page.Locator("#sessions tbody")).ToContainTextAsync("done", new LocatorAssertionsToContainTextOptions { Timeout = 20_000 });
        await Assertions.Expect(page.Locator("#tokens-chart canvas")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#tokens-title")).ToContainTextAsync("browser-moe");
        await page.ClickAsync("nav a[data-view=cluster]");

        var victim = cluster.Silos.First(s => s != dashboardSilo);
        await cluster.KillSiloAsync(victim);
        var row = page.Locator("#silos tbody tr", new PageLocatorOptions { HasText = victim.Address.ToString() });
        await Assertions.Expect(row).ToContainTextAsync("dead", new LocatorAssertionsToContainTextOptions { Timeout = 20_000 });
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory.FullName, "cluster-dead-silo.png"), FullPage = true });

        await page.ClickAsync("nav a[data-view=moe]");
        await Assertions.Expect(page.Locator("#deployments tbody")).ToContainTextAsync("browser-moe");
        var failure = page.Locator("#failures tbody tr", new PageLocatorOptions { HasText = victim.Address.ToString() });
        await Assertions.Expect(failure).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 20_000 });
        await Assertions.Expect(failure.Locator("td").Nth(7)).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^\d+\.\d$"), new LocatorAssertionsToHaveTextOptions { Timeout = 20_000 });
        // A client's wait for a new incarnation around it, in phases; a dash when no request moved (an expert's loss).
        await Assertions.Expect(failure.Locator("td").Nth(8)).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^(–|\d+\.\d = noticed \d+\.\d \+ reopen \d+\.\d \(open \d+\.\d\) \+ first token \d+\.\d; \d+ decoded again)$"));
        generating.Cancel();
        Assert.True(await generations > 0);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory.FullName, "moe.png"), FullPage = true });

        await page.ClickAsync("nav a[data-view=dataplane]");
        await Assertions.Expect(page.Locator("#pool")).ToContainTextAsync(pool);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory.FullName, "dataplane.png"), FullPage = true });
        await page.ClickAsync("nav a[data-view=fl]");
        await Assertions.Expect(page.Locator("#jobs tbody")).ToContainTextAsync("completed");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory.FullName, "fl.png"), FullPage = true });

        Assert.Empty(consoleErrors);
    }
}
