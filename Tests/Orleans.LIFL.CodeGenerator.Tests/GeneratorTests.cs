using Xunit;

namespace Orleans.LIFL.CodeGenerator.Tests;

/// <summary>What the generator emits for valid code, and the specific errors it gives for code it cannot support.</summary>
public sealed class GeneratorTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Threading.Tasks;
        using Orleans.LIFL;
        using Orleans.LIFL.Concurrency;
        using Orleans.LIFL.Persistence;
        using Orleans.LIFL.Serialization;

        """;

    /// <summary>A complete grain (interface, class with injected dependencies and state, serializable types) compiles cleanly.</summary>
    [Fact]
    public void Valid_grain_code_compiles_with_generated_code()
    {
        var result = GeneratorHarness.Run(Usings + """
            namespace Sample;

            public interface IClock { DateTime Now { get; } }

            [GenerateSerializer]
            public sealed record Point([property: Id(0)] int X, [property: Id(1)] int Y);

            [GenerateSerializer]
            public sealed class Shape
            {
                [Id(0)] public List<Point> Points { get; set; } = new();
                [Id(1)] private readonly string _name = "";
                [Id(2)] public required string Kind { get; init; }
            }

            [GenerateSerializer]
            public struct Pair<T> where T : notnull
            {
                [Id(0)] public T First;
                [Id(1)] public T Second;
            }

            public interface IShapeGrain : IGrainWithStringKey
            {
                Task<Shape> Get();
                Task Put(Shape shape, Pair<int> pair);
                Task Named(Shape request, Shape outerCapture);
                [OneWay] Task Fire(string s);
                [ReadOnly] ValueTask<int> Count();
                [AlwaysInterleave, ResponseTimeout("00:00:05")] ValueTask Poke();
            }

            public interface IDerivedShapeGrain : IShapeGrain
            {
                Task<IShapeGrain> Self();
            }

            public sealed class ShapeGrain(IClock clock, [PersistentState("shape")] IPersistentState<Shape> state, IGrainContext context)
                : Grain, IDerivedShapeGrain
            {
                public Task<Shape> Get() => Task.FromResult(state.State);
                public Task Put(Shape shape, Pair<int> pair) => Task.CompletedTask;
                public Task Named(Shape request, Shape outerCapture) => Task.CompletedTask;
                public Task Fire(string s) => Task.CompletedTask;
                public ValueTask<int> Count() => new(clock.Now.Second);
                public ValueTask Poke() => default;
                public Task<IShapeGrain> Self() => Task.FromResult(AsReference<IShapeGrain>());
            }
            """);

        Assert.Empty(result.GeneratorDiagnostics);
        Assert.Empty(result.CompilationErrors);
        Assert.Contains("registrar.AddProxy(typeof(global::Sample.IShapeGrain)", result.GeneratedSource, StringComparison.Ordinal);
        Assert.Contains("registrar.AddGenericCopier(typeof(global::Sample.Pair<>)", result.GeneratedSource, StringComparison.Ordinal);
        Assert.Contains("context.GetPersistentState<global::Sample.Shape>(\"shape\", null)", result.GeneratedSource, StringComparison.Ordinal);
        Assert.Contains("InvokeMethodOptions.OneWay", result.GeneratedSource, StringComparison.Ordinal);
        Assert.Contains("\"00:00:05\"", result.GeneratedSource, StringComparison.Ordinal);
        Assert.DoesNotContain("System.Reflection", result.GeneratedSource, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("LIFL001", "public interface IBad : IGrainWithStringKey { int Get(); }")]
    [InlineData("LIFL002", "public interface IBad : IGrainWithStringKey { Task<T> Get<T>(); }")]
    [InlineData("LIFL003", "public interface IBad : IGrainWithStringKey { Task Get(ref int x); }")]
    [InlineData("LIFL004", "public interface IBad<T> : IGrainWithStringKey { Task<T> Get(); }")]
    [InlineData("LIFL005", "public interface IBad : IGrainWithStringKey { [OneWay] Task<int> Get(); }")]
    [InlineData("LIFL006", "public interface IBad : IGrainWithStringKey { int Value { get; } }")]
    [InlineData("LIFL007", "public interface IBad : IGrainWithStringKey { Task Get(); } public sealed class BadGrain : Grain, IBad { public BadGrain(int a) {} public BadGrain(string b) {} public Task Get() => Task.CompletedTask; }")]
    [InlineData("LIFL008", "public static class Outer { [GenerateSerializer] private sealed class Hidden { [Id(0)] public int X; } }")]
    [InlineData("LIFL009", "[GenerateSerializer] public sealed class Computed { [Id(0)] public int X => 1; }")]
    [InlineData("LIFL011", "[GenerateSerializer] public sealed class Twice { [Id(0)] public int X; [Id(0)] public int Y; }")]
    public void Unsupported_code_gets_a_specific_error(string id, string code)
    {
        var result = GeneratorHarness.Run(Usings + "namespace Sample;\n" + code);
        var diagnostic = Assert.Single(result.GeneratorDiagnostics, d => d.Id == id);
        Assert.Equal(Microsoft.CodeAnalysis.DiagnosticSeverity.Error, diagnostic.Severity);
        var position = diagnostic.Location.GetLineSpan();
        Assert.Equal(GeneratorHarness.SnippetPath, position.Path);
        Assert.True(position.StartLinePosition.Line >= 8, $"{id} points at line {position.StartLinePosition.Line}, before the snippet's code");
    }

    /// <summary>An assembly with nothing to generate gets no generated file.</summary>
    [Fact]
    public void Plain_code_generates_nothing()
    {
        var result = GeneratorHarness.Run(Usings + "namespace Sample; public sealed class Plain { }");
        Assert.Empty(result.GeneratorDiagnostics);
        Assert.Equal("", result.GeneratedSource);
    }
}
