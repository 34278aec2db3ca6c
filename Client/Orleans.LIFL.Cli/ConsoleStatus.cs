using Spectre.Console;

namespace Orleans.LIFL.Cli;

/// <summary>
/// Long work with a live status line on a terminal. Where output is a log (a pipe, CI) a spinner would only repeat
/// itself, so there the work just runs and the caller's own lines tell the story.
/// </summary>
internal static class ConsoleStatus
{
    public static Task<T> RunAsync<T>(string status, Func<StatusContext?, Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        return AnsiConsole.Profile.Capabilities.Interactive
            ? AnsiConsole.Status().StartAsync(Markup.Escape(status), context => work(context))
            : work(null);
    }
}

/// <summary>Error messages go to standard error, so a caller piping the output still sees them.</summary>
internal static class ErrorConsole
{
    public static IAnsiConsole Instance { get; } = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
}
