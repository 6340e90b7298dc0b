package dev.tandem.engine;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class StopStringsTest {
    @Test
    void textThatMayStartAStopStringIsHeldBack() {
        StopStrings s = new StopStrings(List.of("END"));
        assertEquals("abc", s.feed("abc"));
        assertEquals("x", s.feed("xE"));          // "E" may begin "END"
        assertEquals("", s.feed("N"));
        assertEquals("", s.feed("D and more"));
        assertTrue(s.matched());
    }

    @Test
    void heldTextIsReleasedWhenItTurnsOutNotToBeAStop() {
        StopStrings s = new StopStrings(List.of("END"));
        assertEquals("", s.feed("EN"));
        assertEquals("ENx", s.feed("x"));
        assertFalse(s.matched());
        assertEquals("", s.feed("E"));
        assertEquals("E", s.flush());
    }

    @Test
    void theEarliestOfSeveralStopsWins() {
        StopStrings s = new StopStrings(List.of("world", "lo"));
        assertEquals("hel", s.feed("hello world"));
        assertTrue(s.matched());
    }

    @Test
    void withoutStopsEverythingPassesThrough() {
        StopStrings s = new StopStrings(List.of());
        assertEquals("anything", s.feed("anything"));
        assertEquals("", s.flush());
    }
}
