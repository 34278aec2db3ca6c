using System.Collections.Concurrent;

namespace Orleans.LIFL.Runtime.Tests.Infrastructure;

/// <summary>
/// Named events shared between test code and grains in the same process: grains record what happened, tests await
/// it (with a timeout that fails the test instead of hanging it).
/// </summary>
public static class Signals
{
    private static readonly ConcurrentDictionary<string, TaskCompletionSource> Events = new();
    private static readonly ConcurrentDictionary<string, int> Counters = new();

    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    public static void Set(string name) => Get(name).TrySetResult();

    public static Task WaitAsync(string name) => Get(name).Task.WaitAsync(Patience, Xunit.TestContext.Current.CancellationToken);

    public static bool IsSet(string name) => Get(name).Task.IsCompleted;

    public static int Increment(string name) => Counters.AddOrUpdate(name, 1, (_, v) => v + 1);

    public static int Count(string name) => Counters.GetValueOrDefault(name);

    /// <summary>
    /// Waits until <paramref name="condition"/> holds, checking it every 10 ms, failing the test with
    /// <paramref name="failure"/> after <see cref="Patience"/>: for state that raises no event (a silo's connection counts).
    /// </summary>
    public static async Task UntilAsync(Func<bool> condition, string failure)
    {
        var waiting = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Xunit.Assert.True(waiting.Elapsed < Patience, failure);
            await Task.Delay(10, Xunit.TestContext.Current.CancellationToken);
        }
    }

    /// <summary>A unique name prefix per test, so parallel tests never share signals.</summary>
    public static string NewScope() => Guid.NewGuid().ToString("N");

    private static TaskCompletionSource Get(string name) =>
        Events.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}

public static class PatienceExtensions
{
    /// <summary>Waits for the task, failing the test after <see cref="Signals.Patience"/> instead of hanging it.</summary>
    public static Task WithPatience(this Task task) => task.WaitAsync(Signals.Patience, Xunit.TestContext.Current.CancellationToken);

    public static Task<T> WithPatience<T>(this Task<T> task) => task.WaitAsync(Signals.Patience, Xunit.TestContext.Current.CancellationToken);

    public static Task<T> WithPatience<T>(this ValueTask<T> task) => task.AsTask().WithPatience();
}
