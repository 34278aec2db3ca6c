using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Tests.Grains;

/// <summary>Version 1 of a contract whose version 2 adds fields: each must read the other.</summary>
[GenerateSerializer]
public sealed class ContractV1
{
    [Id(0)]
    public string Name { get; set; } = "";

    [Id(1)]
    public int Count { get; set; }
}

[GenerateSerializer]
public sealed class ContractV2
{
    [Id(0)]
    public string Name { get; set; } = "";

    [Id(1)]
    public int Count { get; set; }

    [Id(2)]
    public List<Payload> Added { get; set; } = [];

    [Id(3)]
    public double[] Weights { get; set; } = [];

    [Id(4)]
    public object? Anything { get; set; }
}

[GenerateSerializer]
public readonly record struct Point([property: Id(0)] int X, [property: Id(1)] int Y);

[GenerateSerializer]
public sealed record Shape([property: Id(0)] string Kind, [property: Id(1)] Point[] Points, [property: Id(2)] Dictionary<string, Point> Named);

[GenerateSerializer]
public sealed class Box<T>
{
    [Id(0)]
    public T? Value { get; set; }
}

public enum Color : short
{
    Red = -1,
    Green = 2,
}

/// <summary>An exception with only a (message, inner) constructor, as most are.</summary>
public sealed class WireTestException(string message, Exception? inner) : Exception(message, inner);

/// <summary>An exception that cannot be rebuilt from a message.</summary>
public sealed class NoMessageConstructorException(int code) : Exception($"code {code}");
