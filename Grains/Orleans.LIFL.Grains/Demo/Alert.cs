using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.Demo;

public enum AlertSeverity
{
    Info,
    Warning,
    Critical,
}

/// <summary>An event on an alert stream: the stream key is the room it concerns.</summary>
[GenerateSerializer]
[Immutable]
public sealed record Alert(
    [property: Id(0)] string Room,
    [property: Id(1)] AlertSeverity Severity,
    [property: Id(2)] string Message);
