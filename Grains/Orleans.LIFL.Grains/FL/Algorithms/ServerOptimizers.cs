namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>Creates the server optimizer a job names.</summary>
public static class ServerOptimizers
{
    public const string FedAvg = "fedavg";
    public const string FedAvgM = "fedavgm";
    public const string FedAdam = "fedadam";
    public const string FedYogi = "fedyogi";
    public const string FedAdagrad = "fedadagrad";

    /// <summary>FedProx only adds a proximal term to the clients' loss; the server averages as FedAvg.</summary>
    public const string FedProx = "fedprox";

    /// <summary>FedBuff buffers asynchronous updates with staleness weights (<see cref="StalenessWeighting"/>); the server averages as FedAvg.</summary>
    public const string FedBuff = "fedbuff";

    /// <summary>The names <see cref="Create"/> accepts, in any case.</summary>
    public static IReadOnlyList<string> Algorithms { get; } = [FedAvg, FedAvgM, FedAdam, FedYogi, FedAdagrad, FedProx, FedBuff];

    /// <summary>A fresh optimizer (moments at zero) of <paramref name="algorithm"/> for a model of <paramref name="parameters"/> values.</summary>
    public static IServerOptimizer Create(string algorithm, ServerOptimizerOptions options, int parameters)
    {
        ArgumentNullException.ThrowIfNull(algorithm);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(parameters);
        if (options.Problem() is string problem)
        {
            throw new ArgumentException($"The server optimizer options are not usable: {problem}.", nameof(options));
        }

        return algorithm.ToLowerInvariant() switch
        {
            FedAvg or FedProx or FedBuff => new FedAvgOptimizer(parameters, options),
            FedAvgM => new FedAvgMOptimizer(parameters, options),
            FedAdam => new FedAdamOptimizer(parameters, options),
            FedYogi => new FedYogiOptimizer(parameters, options),
            FedAdagrad => new FedAdagradOptimizer(parameters, options),
            _ => throw new ArgumentException(
                $"There is no server optimizer named '{algorithm}'; the known ones are {string.Join(", ", Algorithms)}.", nameof(algorithm)),
        };
    }
}
