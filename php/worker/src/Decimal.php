<?php

declare(strict_types=1);

namespace Fpmq\Worker;

/**
 * Decimal is an AMQP decimal header value (field type D: a scale and an
 * unscaled integer), which JSON has no type for: HTTP_X_FPMQ_MESSAGE carries
 * it as {"decimal": "12.34"}. $value is that text, exact: no float ever
 * rounds it. Pass it to bcmath or a money library as it is.
 */
final class Decimal implements \JsonSerializable, \Stringable
{
    /** The shape of the text: an optional minus, digits, and optional decimals. */
    public const PATTERN = '/^-?[0-9]+(\.[0-9]+)?$/D';

    /** @throws \InvalidArgumentException when $value is not a decimal number such as 12.34 */
    public function __construct(public readonly string $value)
    {
        if (preg_match(self::PATTERN, $value) !== 1) {
            throw new \InvalidArgumentException("fpmq: not a decimal number: \"{$value}\"");
        }
    }

    public function __toString(): string
    {
        return $this->value;
    }

    /** @return array{decimal: string} the value as HTTP_X_FPMQ_MESSAGE writes it */
    public function jsonSerialize(): array
    {
        return ['decimal' => $this->value];
    }
}
