import { describe, expect, it } from 'vitest';
import { topicMatches } from './event-subscriptions.ts';

describe('topicMatches', () => {
  it.each([
    ['*', 'surveyengine.completedResponse.SV_1', true],
    ['surveyengine.completedResponse.*', 'surveyengine.completedResponse.SV_1', true],
    ['surveyengine.completedResponse.SV_1', 'surveyengine.completedResponse.SV_1', true],
    ['surveyengine.completedResponse.SV_2', 'surveyengine.completedResponse.SV_1', false],
    ['threesixty.*', 'threesixty.person.statusChanged', true],
    ['threesixty.*', 'surveyengine.completedResponse.SV_1', false],
    ['controlpanel.activateSurvey', 'controlpanel.activateSurvey.extra', false],
    ['surveyengine.completedResponse.*', 'surveyengine.completedResponse', false],
  ])('%s against %s is %s', (pattern, topic, expected) => {
    expect(topicMatches(pattern, topic)).toBe(expected);
  });
});
